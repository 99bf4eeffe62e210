#!/usr/bin/env node
// Writes routing-models/data/train.jsonl: the routing model's training split.
//
// Authoring pass 1 (training): hand-written seed requests per service plus template
// expansions (slots filled from per-service vocabularies), then deterministic noise (typos,
// casing, fillers, fragments), body field rotation (query/prompt/message) and a few client
// headers. The validation split (validation.jsonl) was written separately, by hand, without
// these templates; holdout.jsonl was written last and is never used for tuning.
//
//   node routing-models/data/authoring/generate-training.mjs [--seed 7]
//
// Deterministic: the same seed writes the same file byte for byte.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLOSERS, OPENERS, PHRASINGS } from './phrasing.mjs';
import { CLOSERS_4, OPENERS_4, PHRASINGS_4 } from './phrasing-4.mjs';
import { PHRASINGS_5 } from './phrasing-5.mjs';
import { PHRASINGS_6 } from './phrasing-6.mjs';
import { PHRASINGS_7 } from './phrasing-7.mjs';
import { PHRASINGS_8 } from './phrasing-8.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const OUT = join(HERE, '..', 'train.jsonl');
const seedArg = process.argv.indexOf('--seed');
const SEED = seedArg > 0 ? Number(process.argv[seedArg + 1]) : 7;
// --split DIR: also write the lines of each authoring pass to DIR/pass-<name>.jsonl (for the
// leave-one-pass-out estimate of cross-validate.ts; never into the data folder, whose
// train*.jsonl are all training data).
const splitArg = process.argv.indexOf('--split');
const SPLIT_DIR = splitArg > 0 ? process.argv[splitArg + 1] : undefined;
const QUERIES_PER_SERVICE = 330;

// The texts of the validation and held-out files (normalised as the shipped-model test does):
// a generated line that equals one of them is skipped, so that a template or the noise never
// puts an evaluation line into training by chance (as "agent status" once did).
const normText = (t) => t.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim();
const HELD_OUT = new Set();
for (const f of readdirSync(join(HERE, '..')).filter((n) => /^(validation|holdout).*\.jsonl$/.test(n))) {
  for (const line of readFileSync(join(HERE, '..', f), 'utf8').split('\n')) {
    if (line.trim() === '' || line.startsWith('//')) continue;
    const body = JSON.parse(line).request?.body ?? {};
    for (const k of ['query', 'prompt', 'message']) if (typeof body[k] === 'string' && normText(body[k]) !== '') HELD_OUT.add(normText(body[k]));
  }
}

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
let rand = mulberry32(SEED);
/**
 * A random stream of its own for each part of the file (a service's templates, each pass, its
 * request fields, its uploads, the final shuffle): lines added to one pass change nothing of
 * the other parts' noise, so the leave-one-pass-out folds of the unchanged passes stay the
 * same lines and a data change is measured on them, not on re-drawn noise.
 */
function reseed(part) {
  let h = 0x811c9dc5;
  for (let i = 0; i < part.length; i++) h = Math.imul(h ^ part.charCodeAt(i), 0x01000193);
  rand = mulberry32((SEED ^ h) >>> 0);
}
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const chance = (p) => rand() < p;

/** Fill {slot} placeholders from a vocabulary. */
function expand(template, slots) {
  return template.replace(/\{(\w+)\}/g, (_m, name) => {
    const values = slots[name];
    if (!values) throw new Error(`no slot ${name} in "${template}"`);
    return pick(values);
  }).replace(/\s+/g, ' ').trim();
}

// ---------------------------------------------------------------------------------------
// twin: personal digital-twin assistant (conversation, the user's own notes, preferences, reminders)
const twin = {
  seeds: [
    'remind me to buy a birthday present for Lena on saturday',
    'set a reminder for my yoga class at 7 tomorrow',
    'what notes do I have about the trip to Portugal',
    'add to my notes: the car insurance renews in August',
    'I prefer emails summarized in three sentences max',
    'how are you doing today?',
    'I had a great day, want to hear about it?',
    'what did I tell you about my new neighbour',
    "remember I don't eat pork",
    'list my reminders for today',
    'delete all my reminders from last week',
    'move my reminder about the vet to friday afternoon',
    'what does my day look like',
    'write down that I lent my drill to Tom',
    'keep a running list of podcast recommendations for me',
    "search my notes for 'mortgage'",
    'I feel stressed out, talk to me',
    "I'm so tired today, everything feels heavy",
    'what should I cook tonight, you know what I like',
    'update my profile: I moved to Lyon',
    'my kids are called Mia and Leo, remember that',
    'what preferences have I saved so far',
    'use metric units from now on please',
    "don't wake me before 8 on sundays",
    'show my journal from last summer',
    'add an entry to my gratitude journal',
    'which habits am I tracking right now',
    'log that I meditated for 10 minutes',
    "what did I note about the doctor's advice",
    'be my accountability buddy for studying this week',
    'remind me to stretch every two hours',
    "when's my next reminder",
    'clear all my notifications',
    'send me a weekly recap of my notes every friday',
    'tell me something nice',
    'good night!',
    'I miss my grandma, she made the best soup',
    'what do you remember about me',
    'erase everything you know about my ex',
    'my favourite colour is green, remember it',
    'recommend a movie based on what I usually like',
    "what's my preferred seat on flights",
    'put the dentist on my personal calendar for the 12th',
    'note: parking spot is on level 3, row F',
    'what was that restaurant I liked in Rome',
    'my birthday is july 9th',
    'did I log my vitamins today?',
    'rewrite my note about the house viewing so it reads better',
    'merge my two shopping lists into one',
    'share a motivational thought with me',
    'erinnere mich morgen an den Arzttermin',
    'ajoute dans mes notes: appeler le plombier jeudi',
    '¿qué tengo en mis notas sobre el viaje?',
    'recuerda que prefiero el té verde',
    'wie geht es dir heute?',
    'talk to me like a friend, not a robot',
    'wake-up reminder 6:45 weekdays',
    'what did I say my new year resolutions were',
    'can you tell I am in a bad mood',
    'I just got promoted!! had to tell someone',
    'help me plan my personal week, gym three times',
    "what's on my personal agenda tomorrow",
    'my notes from the parents evening please',
    'you can call me Chris from now on',
    "I don't like getting reminders on weekends",
    'mute reminders while I am on vacation',
    'remind me of my anniversary a week before',
    'what gift did I buy my brother last christmas, I noted it somewhere',
    'keep my answers in German from now on',
    'how many steps did I log yesterday',
    'what were the things I was grateful for last month',
    'start a new note called packing list',
    'add sunscreen to my packing list note',
    'ok thanks, that is all for now',
    'lol that is funny, tell me another one',
    'hmm, what should I do tonight',
    'did I already pay the rent? I usually note it',
    "what's my wifi password, I saved it in a note",
    'remember my blood type is A positive',
    'I changed my mind, I prefer tea in the morning now',
    'delete my preference about news topics',
    'quick reminder for the school bake sale on wednesday',
  ],
  templates: [
    '{remind} {task} {when}',
    '{remind} {task} {when}',
    '{remind} {task}',
    '{noteverb} {notecontent}',
    '{noteverb} {notecontent}',
    '{searchnotes} {topic}',
    '{searchnotes} {topic}',
    '{prefintro} {pref}',
    '{prefintro} {pref}',
    '{greeting}, {smalltalk}',
    '{smalltalk}',
    '{mgmt} my reminder {about}',
    '{journalverb} {journalcontent}',
    'what did I {say} about {topic}',
    '{remember} my {personal} is {personalvalue}',
    '{listq}',
    'remind me to check on {overlapthing} {when}',
    'what did I note about {overlapthing}',
  ],
  slots: {
    remind: ['remind me to', 'set a reminder to', "don't let me forget to", 'reminder:', 'can you remind me to', 'nudge me to', 'make sure I remember to', 'ping me to', 'reminder to', 'plz remind me to'],
    task: ['call mom', 'pay the electricity bill', 'take my medication', 'book a haircut', 'renew the car registration', 'send grandma a postcard', 'water the tomatoes', 'return the library books', 'pick up the kids', 'back up my phone photos', 'buy a gift for Anna', 'cancel the magazine subscription', 'walk the dog', 'charge my headphones', 'feed the cat', 'drink some water', 'stretch my back', "reply to Marco's text", 'book the restaurant for our anniversary', 'get my flu shot', 'check the mailbox', 'take the bins out', 'schedule the car service', 'text Sara happy birthday', 'pack the gym bag', 'order contact lenses'],
    when: ['tomorrow at 8', 'tonight', 'on friday', 'in an hour', 'next monday morning', 'every evening', 'at noon', 'before I leave work', 'this weekend', 'on the 15th', 'in 10 minutes', 'at 7pm', 'every other day', 'when I get home', 'after lunch', 'first thing tomorrow', 'on sunday evening', 'in two weeks'],
    noteverb: ['add a note:', 'save a note that', 'write down that', 'note that', 'put in my notes:', 'remember this:', 'make a note -', 'jot down:', 'new note:', 'keep a note that', 'store in my notes:'],
    notecontent: ['the spare key is under the blue pot', 'I owe Ben 20 euros', 'the plumber comes on tuesday', 'my locker code is 4411', "Anna's shoe size is 38", 'I want to try the new ramen place', 'the boiler was serviced in may', 'ideas for the garden: lavender and rosemary', 'my gym membership ends in december', 'the landlord promised to fix the window', 'book idea: a detective in a small village', 'I parked at the north entrance', 'the kids have swimming on thursdays', 'my passport number is in the drawer'],
    searchnotes: ['what did I write about', 'find my notes on', 'search my notes for', 'show me my notes about', 'pull up what I noted about', 'what do my notes say about', 'summarize my notes on', 'anything in my notes about', 'open my note about', 'read me my notes on'],
    topic: ['the kitchen renovation', 'my running plan', 'the book club', 'our holiday in Greece', 'my salary negotiation', 'the new apartment', "my sister's wedding", 'the parent-teacher meeting', 'my diet', "last month's goals", 'the podcast idea', 'the car repair', 'my therapy session', 'the birthday party plans', 'my reading list', 'the weekend trip', 'my side project', 'the job interview'],
    prefintro: ['I prefer', "from now on I'd like", 'please remember that I like', 'my preference is', 'set my preference to', "I'd rather have", 'always use', 'I like', "I don't like", 'change my settings to'],
    pref: ['short answers', 'a friendly tone', 'reminders by text message', 'the 24-hour clock', 'vegetarian recipes', 'morning summaries at 7am', 'no news about sports', 'Celsius for the weather', 'British spelling', 'to be called Alex', 'quiet hours after 10pm', 'jazz playlists while I work', 'window seats', 'spicy food', 'long detailed explanations', 'emoji in messages', 'a daily check-in at 9'],
    greeting: ['hi', 'hey there', 'good evening', 'hello again', 'yo', 'morning', 'hey buddy', 'hiya'],
    smalltalk: ['how are you?', 'can we just talk?', 'I need some advice about my friend', "I'm feeling lonely tonight", 'what should I do this weekend?', 'tell me a fun fact', 'guess what happened today', 'I could use a pep talk', 'how do I stop procrastinating?', 'what do you think of my plan to learn piano?', 'I had an argument with my partner', 'I am bored out of my mind', 'can you keep me company for a while', 'tell me a story', 'what would you do in my place?', 'I need to get something off my chest'],
    mgmt: ['cancel', 'move', 'reschedule', 'change', 'delete', 'snooze', 'show me', 'push back', 'repeat'],
    about: ['about the dentist', 'for the team lunch', 'to call the bank', 'for the gym', 'about the package', 'for the car wash', 'about the parcel pickup', 'for piano practice'],
    journalverb: ['log in my journal:', 'diary entry:', 'add to my journal:', 'journal:', 'write in my diary that', 'today in my journal:'],
    journalcontent: ['I finally slept well', 'the walk by the lake made me happy', 'work was exhausting', 'I cooked lasagna for the first time', 'had coffee with an old friend', 'felt proud of my presentation', 'rainy and lazy sunday'],
    say: ['say', 'tell you', 'mention', 'write', 'decide', 'note'],
    remember: ['remember that', 'please remember', 'save that', 'keep in mind that', 'for the record'],
    personal: ['shoe size', 'favourite band', 'blood type', 'home address', "partner's name", 'dog\'s name', 'coffee order', 'usual bedtime', 'preferred gym', 'favourite cuisine'],
    personalvalue: ['43', 'Radiohead', '0 negative', '12 Elm street', 'Jamie', 'Biscuit', 'a double espresso', 'eleven', 'the one downtown', 'thai'],
    listq: ['what are my reminders', "what's on my todo list for today", 'show all my notes', 'read my reminders for tomorrow', 'what have I planned for the weekend', 'which reminders are still open', 'list my personal notes', 'what preferences do you know about me'],
    overlapthing: ['the agent demo', 'my fog job', 'the documents I need to read', 'the peer sync', 'the report'],
  },
  uploads: {
    stems: ['voice_memo', 'my_notes', 'journal', 'shopping_list', 'reminders', 'family_photo', 'recipe_collection', 'diary', 'todo', 'birthday_list', 'workout_log', 'personal_goals', 'gift_ideas', 'packing_list', 'medication_schedule'],
    files: [['m4a', 'audio/mp4'], ['txt', 'text/plain'], ['md', 'text/markdown'], ['jpg', 'image/jpeg'], ['ics', 'text/calendar'], ['ogg', 'audio/ogg'], ['vcf', 'text/vcard'], ['csv', 'text/csv']],
    messages: ['', '', 'keep this in my notes', 'add to my personal journal', 'remember this for me', 'set reminders from this', 'my own notes, save them', 'put this with my personal stuff', 'this is my list, remind me about it', 'save to my diary'],
  },
};

// ---------------------------------------------------------------------------------------
// agent-controller: Agent Forge (create, train, evaluate, deploy and run agents)
const agents = {
  seeds: [
    'build me an agent that answers questions on our discord server',
    'what is the win rate of the negotiation agent after the last training',
    'redeploy the helpdesk agent with the fixed prompt',
    'list every agent that is currently running',
    'how many agents do I have deployed in production',
    'evaluate the translator agent against the gold set',
    'the support agent is replying in the wrong language, roll it back',
    'show me the training curve of agent atlas',
    'fine-tune agent echo on the labeled chats from march',
    'what tools can the research agent call',
    'agent runs for today, with success and failure counts',
    'kill run 5512 of the scraper agent',
    'create a scheduling agent that can read my calendar and propose slots',
    'delete agent prototype-3',
    'update the coding agent to use the new base model',
    'how long did the last evaluation of agent orion take',
    'agent forge templates for customer service?',
    'set up a nightly retraining schedule for the classifier agent',
    'the planner agent fails half its evals since tuesday, why',
    'promote agent v7 from staging to production',
    'what is the reward of the latest policy checkpoint',
    'run the benchmark for all agents and show a table',
    'give agent nova permission to send emails',
    'limit agent spending to 10 dollars a day',
    'what model does the summarizer agent use under the hood',
    'configure the agent to ask for approval before deleting files',
    'clone the best performing agent and tweak its prompt',
    'deploy the new agent version as a canary at 10 percent',
    'stop the training run for agent hermes, the loss diverged',
    'start a new agent from scratch with memory enabled',
    'compare the latest two checkpoints of the qa agent',
    'export the eval report of the recruiting agent',
    'show the trace of the last failed agent run',
    'how many tokens per task does the triage agent use on average',
    'add retrieval as a tool for the customer agent',
    'the agent deployment is stuck in pending, can you check',
    'roll out the updated agent to all regions',
    'which agent versions are live right now',
    'I want to train an agent to play chess',
    'make a multi-agent setup with a critic and a writer',
    'run my agent against the regression tests before deploy',
    'agent evaluation: precision and recall on the intent task',
    'set the max number of steps for the browsing agent to 30',
    'the agent keeps calling the same API in a loop, stop it',
    'new agent: monitors prices of competitors daily',
    'erstelle einen Agenten, der Support-Tickets beantwortet',
    'déploie le nouvel agent en production',
    'entrena el agente de ventas con los nuevos datos',
    'wie ist der Trainingsstand meines Agenten?',
    'rename agent bob-v2 to helper',
    'schedule agent runs every 15 minutes',
    'what is the evaluation score trend for my agents over the last month',
    'retire the old onboarding agent',
    'sandbox test the new agent before it touches real data',
    'agent logs show permission denied on the tool call, fix permissions',
    'which dataset was the support agent fine-tuned on',
    'train with reinforcement learning from human feedback for agent sage',
    'evaluate hallucination rate of the research agent',
    'my agent is too slow, use a faster model for the first step',
    'swap the system prompt of the agent for version b',
    'publish the agent to the marketplace',
    'agent status?',
    'agents overview',
    'is the retraining of the classifier agent finished',
    'how much did training agent atlas cost so far',
    'add an evaluation step to the agent deployment pipeline',
    'restart all agents that crashed overnight',
    'what did the last agent run produce',
    'agent prompt versioning, show diff between v3 and v4',
    'create agent from the customer-support template and deploy to staging',
    'run the data-labeling agent on the new batch of images',
    'what is the status of the agent training job',
    'the eval job for agent kappa failed, rerun it',
  ],
  templates: [
    '{agentaction} the {agentname} agent',
    '{agentaction} the {agentname} agent',
    '{agentaction} agent {agentid}',
    '{create} an agent that {capability}',
    '{create} an agent that {capability}',
    '{statusq} the {agentname} agent{statustail}',
    'train the {agentname} agent {traindetail}',
    'train agent {agentid} {traindetail}',
    'evaluate the {agentname} agent on {benchmark}',
    'run {benchmark} against agent {agentid}',
    'give the {agentname} agent {tool}',
    'remove {tool} from the {agentname} agent',
    'the {agentname} agent {problem}',
    'set the {param} of the {agentname} agent to {value}',
    '{deployverb} agent {agentid} to {env}',
    '{deployverb} the {agentname} agent to {env}',
    'run the {agentname} agent on {runinput}',
  ],
  slots: {
    agentaction: ['deploy', 'undeploy', 'evaluate', 'retrain', 'fine-tune', 'pause', 'resume', 'restart', 'delete', 'clone', 'roll back', 'benchmark', 'test', 'stop', 'archive', 'inspect', 'version', 'redeploy', 'upgrade', 'shut down'],
    agentname: ['support', 'research', 'sales', 'scheduler', 'triage', 'coding', 'summarizer', 'onboarding', 'translator', 'billing', 'qa', 'recruiting', 'security-review', 'marketing', 'data-labeling', 'ops', 'legal', 'travel', 'inventory', 'customer success'],
    agentid: ['atlas', 'nova', 'orion', 'hermes', 'sage', 'echo', 'kappa', 'v2', 'helper-3', 'bot-17', 'scout', 'lyra', 'ag-2291'],
    create: ['create', 'build', 'make', 'spin up', 'set up', 'I need', 'design', 'generate', 'can you create', 'new', 'forge'],
    capability: ['answers customer emails', 'reviews pull requests', 'writes weekly reports', 'books meeting rooms', 'monitors social media mentions', 'extracts fields from invoices', 'plans travel itineraries', 'tags support tickets by urgency', 'drafts sales outreach', 'summarizes long threads for executives', 'translates product descriptions', 'checks contracts for risky clauses', 'answers HR questions', 'triages bug reports', 'reconciles bank statements', 'moderates forum posts', 'writes unit tests', 'qualifies leads', 'onboards new employees', 'chats with website visitors'],
    statusq: ['how is the training of', "what's the status of", 'is there news on', 'what are the eval results for', 'show metrics for', 'when will training finish for', 'how well is', 'what is the accuracy of', 'how is the deployment of', 'show the last runs of'],
    statustail: ['', '', '?', ' doing', ' going', ' performing', ' right now'],
    traindetail: ['for 10 more epochs', 'on the new dataset', 'with a lower learning rate', 'using human feedback', 'with the updated reward model', "on yesterday's transcripts", 'from the latest checkpoint', 'with a bigger batch size', 'on the cleaned labels', 'for 2000 steps', 'with early stopping', 'on synthetic dialogues'],
    benchmark: ['the regression suite', 'the customer satisfaction benchmark', 'held-out tickets', 'math word problems', 'tool-use tasks', 'the safety suite', 'HumanEval', 'the red-team set', 'our internal eval', 'the golden dataset', 'the latency test', 'multi-turn conversations'],
    tool: ['web search', 'a calculator', 'jira access', 'a code interpreter', 'email sending', 'the CRM connector', 'read access to the database', 'a browser', 'the slack tool', 'file system access', 'the payments API', 'the calendar tool'],
    problem: ['keeps timing out on tool calls', 'is giving wrong answers since the update', 'got stuck in a loop', 'failed its evaluation', 'has a low success rate', 'crashed during training', 'uses too many tokens', 'ignores its instructions', 'is slower after the deploy', 'returns empty outputs', 'hallucinates tool names'],
    param: ['temperature', 'max steps', 'learning rate', 'context window', 'top_p', 'retry limit', 'timeout', 'token budget', 'memory size', 'batch size'],
    value: ['0.2', '50', '1e-5', '32k', '0.9', '3', '60 seconds', '100k', '20 items', '64'],
    deployverb: ['deploy', 'promote', 'ship', 'roll out', 'push', 'release'],
    env: ['production', 'staging', 'the eu cluster', 'canary', 'dev', 'all customers', 'the sandbox'],
    runinput: ['the new tickets', 'this week\'s invoices', 'the test prompts', 'dataset 17', 'the backlog', 'sample conversations', 'the open pull requests'],
  },
  uploads: {
    stems: ['agent_config', 'agent-spec', 'training_data', 'eval_set', 'tools', 'system_prompt', 'checkpoint', 'reward_model', 'finetune_dialogs', 'agent_persona', 'benchmark_tasks', 'agent_policy', 'guardrails', 'agent_workflow', 'prompt_templates'],
    files: [['yaml', 'application/yaml'], ['json', 'application/json'], ['jsonl', 'application/jsonl'], ['csv', 'text/csv'], ['pt', 'application/octet-stream'], ['md', 'text/markdown'], ['safetensors', 'application/octet-stream'], ['onnx', 'application/octet-stream']],
    messages: ['', '', 'create an agent from this', 'fine-tune my agent with this data', 'evaluate the agent with these cases', 'use these tools in the agent', 'load this checkpoint into agent nova', 'training set for the triage agent', 'deploy the agent with this config', 'prompt for the new agent'],
  },
};

// ---------------------------------------------------------------------------------------
// knowledge: RAG (questions answered from documents, search, ingest)
const knowledge = {
  seeds: [
    'what does our travel policy say about business class',
    'find the paragraph in the handbook about sick days',
    'summarize the latest incident report',
    'is there a document describing our deployment process',
    'what are the onboarding steps listed in the wiki',
    'who is the owner of the data governance policy document',
    'how do I set up the VPN, per the IT docs',
    'search all documents for mentions of project Falcon',
    'what is the maximum file size according to the API docs',
    'give me the key points of the strategy memo',
    'which contracts expire in 2025 according to the legal folder',
    'explain the CAP theorem',
    'what is a neural network',
    'how do solar panels generate electricity',
    'who painted the Mona Lisa',
    'what caused the 2008 financial crisis',
    'translate and summarize the Japanese spec document',
    'ingest the latest release notes',
    'index our confluence space',
    'add the new compliance PDF to the knowledge base',
    'the search index is missing last week\'s documents, reindex please',
    'what sources back up the statement in the press release',
    'find documentation about configuring webhooks',
    'according to the postmortem, why did the job scheduler crash',
    'the architecture doc mentions a job queue, how does it work',
    'what does the networking whitepaper say about NAT traversal',
    'is there a doc that explains peer discovery in our protocol',
    'the design guide for agents, what does it recommend about memory',
    'what does the pricing page document say about enterprise plans',
    'summarize the research paper on edge computing latency',
    'which internal doc describes how compute jobs are billed',
    'quote the section of the SLA about uptime credits',
    'what do the release notes say about the sync feature',
    'look up the definition of MTTR in the glossary',
    'how many employees does the annual report list',
    'what does GDPR article 17 say',
    'compare the two architecture proposals in the RFC folder',
    'list all policies updated in the last 30 days',
    'find tutorials about python decorators in the knowledge base',
    'where is the document about code review guidelines',
    'what does the docs page say about rate limits',
    'tell me what the manual says about resetting the device',
    'search the support articles for "invoice not received"',
    'what are best practices for writing unit tests',
    'why is the sky blue',
    'how does a bill become a law',
    'what is the population of Canada',
    'explain the difference between RAM and storage',
    'how do I cite a source in APA style',
    'what are the symptoms of vitamin D deficiency',
    'was sagt die Dokumentation zur Passwortrichtlinie?',
    'résume le rapport annuel',
    '¿qué dice el manual sobre la garantía?',
    'cherche dans la base de connaissances les infos sur les congés',
    'Wer hat die Relativitätstheorie entwickelt?',
    'fetch relevant passages on customer retention from our research',
    'remove the duplicate copies of the handbook from the index',
    'what documents do we have about the acquisition',
    'is the information in the security FAQ still current',
    'answer using only the product docs: can users export data to CSV',
    'what does chapter 7 of the textbook cover',
    'give me three sources on renewable energy policy',
    'which page of the manual covers calibration',
    'knowledge base: how to request parental leave',
    'docs search: kubernetes ingress annotations',
    'what are the main findings of the user survey report',
    'how does the company define a qualified lead in the sales playbook',
    'what is the history of the internet',
    'explain how compilers work',
    'according to the spec, what fields are required in the request',
    'what year was the company founded according to the about page',
    'what is in the meeting minutes about hiring',
    'crawl docs.example.com and add it to the index',
    'explain the pricing section of the fog whitepaper',
  ],
  templates: [
    '{docq} {doc} {doctopic}',
    '{docq} {doc} {doctopic}',
    '{docq} {doc} {doctopic}',
    '{wh} {facttopic}',
    '{wh} {facttopic}',
    // issue 15: a general question with a personal context is still knowledge's, not twin's
    '{askctx} {wh} {facttopic}',
    '{ingestverb} {docthing} {into}',
    '{ingestverb} {docthing} {into}',
    '{searchverb} {searchtopic}',
    '{searchverb} {searchtopic}',
    'what does the {doc} say about {overlaptopic}',
    'is there documentation on {overlaptopic}',
    'the {doc} mentions {overlaptopic} - {docfollow}',
  ],
  slots: {
    docq: ['what does the', 'what do the', 'according to the', 'summarize the', 'search the', 'find in the', 'look up in the', 'quote from the', 'cite the', 'check the', 'what is written in the', 'explain the part of the'],
    doc: ['employee handbook', 'security policy', 'design document', 'API documentation', 'onboarding guide', 'runbook', 'wiki', 'product spec', 'legal contract', 'release notes', 'compliance manual', 'research paper', 'meeting minutes', 'quarterly report', 'FAQ', 'knowledge base', 'internal docs', 'user manual', 'style guide', 'incident postmortem', 'RFC', 'architecture overview', 'whitepaper', 'terms of service', 'sales playbook', 'training materials', 'annual report', 'help center'],
    doctopic: ['about remote work', 'on password rotation', 'regarding data retention', 'about travel expenses', 'on incident response', 'about vacation days', 'on customer refunds', 'about the escalation process', 'regarding accessibility', 'about backups', 'on code reviews', 'about pricing tiers', 'on encryption at rest', 'about the hiring process', 'on expense approval', 'about performance reviews', 'on the release process', 'about SSO setup'],
    wh: ['what is', 'explain', 'who invented', 'how does', 'why is', 'define', 'tell me about', 'what are the causes of', 'when was', 'give me an overview of', 'what is the meaning of', 'summarize the history of', 'how do',
      // issue 15: general questions are knowledge's (the default service), asked every way and in other languages
      'whats', 'quick facts about', 'eli5', 'i never understood', 'can you explain', 'how does it work:', 'was ist', 'erklär mir', "qu'est-ce que", 'explique-moi', 'qué es', 'explícame', "cos'è", 'spiegami', 'o que é', 'me explica', 'co to jest', 'wat is', 'yeh kya hai:'],
    askctx: ['my kid asked me:', 'I was wondering,', 'I always wanted to know:', 'my friend and I argued about this:', 'for my homework:', 'I have a quiz tonight:', 'I feel dumb asking but', 'I told my wife I would find out:', 'random thought,', 'my boss asked me', 'ich frage mich:', 'je me demandais :', 'mi chiedevo:', 'me preguntaba:', 'eu queria saber:', 'mera beta pooch raha tha:'],
    facttopic: ['the speed of light', 'machine learning', 'the French revolution', 'blockchain', 'DNS', 'inflation', 'the water cycle', 'Kubernetes', 'black holes', 'the Pythagorean theorem', 'climate change', 'the printing press', 'vector databases', 'HTTP caching', 'the immune system', 'public key cryptography', 'the stock market', 'the Renaissance', 'gradient descent', 'the Cold War', 'photosynthesis in algae', 'OAuth', 'supply and demand', 'continental drift', 'TLS handshakes', 'the human genome',
      'the Roman empire', 'volcanoes', 'the theory of evolution', 'leap years', 'the moon landing', 'the Great Wall of China', 'the Amazon river', 'World War I', 'the Olympic games', 'DNA replication', 'earthquakes', 'the euro', 'the periodic table', 'antibiotics', 'the stock exchange', 'the electoral college', 'impressionism', 'the Big Bang', 'tides', 'rainbows', 'jazz', 'the Silk Road', 'plate tectonics', 'compound interest', 'the Magna Carta', 'quantum entanglement', 'the offside rule', 'sourdough fermentation', 'the placebo effect', 'the Eiffel tower', 'hurricanes', 'the Byzantine empire', 'CRISPR', 'the ozone layer', 'Shakespeare', 'the Industrial Revolution'],
    ingestverb: ['ingest', 'index', 'add', 'import', 'load', 'reindex', 'embed', 'crawl', 'upload', 'sync into search'],
    docthing: ['these PDFs', 'the new policy document', 'the Confluence space', 'our support articles', 'the product manuals', 'the shared drive folder', 'this web page', 'the research papers', "last year's reports", 'the interview transcripts', 'the legal contracts', 'the slide decks', 'the engineering wiki', 'the customer case studies'],
    into: ['into the knowledge base', "so they're searchable", 'to the document index', 'into the RAG pipeline', 'to the search collection', '', 'for question answering', 'into the docs library'],
    searchverb: ['search for documents about', 'find articles on', 'any docs about', 'retrieve passages about', 'which documents mention', 'look for pages about', 'search the knowledge base for', 'find me the doc on', 'top results for', 'search docs:'],
    searchtopic: ['onboarding checklists', 'the 2023 budget', 'customer churn', 'API authentication', 'the Berlin office move', 'data privacy', 'load testing', 'the mobile app roadmap', 'supplier contracts', 'quarterly OKRs', 'the brand guidelines', 'error code 504', 'accessibility standards', 'the merger'],
    overlaptopic: ['job scheduling', 'the batch job architecture', 'peer-to-peer networking', 'NAT traversal', 'agent training', 'how agents are evaluated', 'fog node pricing', 'compute capacity planning', 'message syncing between devices', 'reminders and notifications', 'the mesh protocol', 'failed jobs'],
    docfollow: ['what does it say?', 'summarize that part', 'explain it', 'what exactly?', 'where is that section?', 'quote it for me'],
  },
  uploads: {
    stems: ['annual_report', 'employee_handbook', 'security_policy', 'research_paper', 'product_manual', 'meeting_minutes', 'design_doc', 'contract', 'whitepaper', 'faq', 'release_notes', 'case_study', 'slides', 'specification', 'compliance_guide'],
    files: [['pdf', 'application/pdf'], ['pdf', 'application/pdf'], ['docx', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'], ['md', 'text/markdown'], ['html', 'text/html'], ['pptx', 'application/vnd.openxmlformats-officedocument.presentationml.presentation'], ['xlsx', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'], ['txt', 'text/plain']],
    messages: ['', '', 'add to the knowledge base', 'index this document', 'make this searchable', 'ingest for question answering', 'add to the docs collection', 'put this in the document library', 'so the team can search it', 'ingest please'],
  },
};

// ---------------------------------------------------------------------------------------
// fog: fog computing (submit and track compute jobs, capacity, nodes, pricing)
const fog = {
  seeds: [
    'submit my rendering job to the fog network',
    'job 3321 status',
    'how many jobs do I have in the queue',
    'cancel all my pending jobs',
    'what is the current price for a GPU hour',
    'how much capacity is left in the frankfurt zone',
    'list the nodes that are online',
    'node fn-88 is unreachable, what happened',
    'why was my job evicted',
    'show me the cost of last month\'s compute',
    'run my container on a GPU node',
    'I want to rent out my idle desktop as a fog node',
    'how much have I earned from providing compute',
    'estimated wait time for a 64-core job',
    'my job ran out of memory on the node',
    'increase the memory limit for job 7781',
    'reserve capacity for a training run next week',
    'check if there are free A100s',
    'price list for compute nodes',
    'what is the cheapest region to run batch jobs',
    'job failed: OOMKilled, how do I fix it',
    'download the artifacts from job 5590',
    'list my jobs from yesterday with their runtime',
    'is the compute cluster overloaded right now',
    'set up a recurring job every night at 3',
    'what is the spot price trend this week',
    'the node in the warehouse is offline again',
    'add a new edge device as a compute node',
    'how is job pricing calculated',
    'move job 1180 to a faster node',
    'preemptible vs reserved pricing, which is cheaper for me',
    'show resource usage of my running jobs',
    'my batch job is stuck in queued',
    'how many nodes are in the fog network',
    'submit job with image python:3.12 and command python run.py',
    'run 100 parallel tasks on the cheapest capacity',
    'what are the GPU types available on the fog nodes',
    'node health report',
    'total compute spend for the team this quarter',
    'is my job still running?',
    'stop job 901',
    'wie ist der Status meines Rechenjobs?',
    'quel est le prix d\'une heure de GPU ?',
    'cancela el trabajo 4410',
    'wie viel Kapazität ist frei?',
    'job output is empty, did it finish correctly',
    'what region are my jobs running in',
    'can I run jobs on nodes near my users for low latency',
    'increase my compute quota',
    'how long did job 2290 take and how much did it cost',
    'the scheduler put my job on a slow node',
    'reboot node gpu-3',
    'take node edge-9 out of the pool for repairs',
    'what happens if my spot job gets interrupted',
    'run this workload only on nodes with SSDs',
    'bill for compute jobs in september',
    'what is the uptime of the fog nodes this month',
    'job priority queue explained for my account',
    'tail the logs of my running job',
    'resubmit job 3302 with 2 more GPUs',
    'is there a discount for long-running jobs',
    'submit the ML training job to the cluster with 8 GPUs',
    'status of my GPU training job on the fog nodes',
    'the node agent on my server stopped reporting',
    'capacity planning for next month\'s simulation runs',
    'add more nodes to my compute pool',
    'job retries exhausted, what now',
    'split the job into 20 shards',
    'which jobs are using the most CPU',
    'fog dashboard shows 0 nodes available',
    'pricing per gigabyte of storage on the nodes',
    'my node has been idle all week, why no jobs',
    'queue a job that processes the log files',
  ],
  templates: [
    '{jobverb} job {jobid}',
    '{jobverb} job {jobid}',
    '{jobverb} my {workload}',
    'submit {workload} {resources}',
    'submit {workload} {resources}',
    'run {workload} {resources}',
    'how much {resource} capacity is available {where}',
    'are there free {resource} nodes {where}',
    '{priceq} {priceitem}',
    '{priceq} {priceitem}',
    '{nodeverb} node {nodename}',
    '{nodeverb} node {nodename}',
    'my job {jobproblem}',
    'job {jobid} {jobproblem}',
    'how much have I earned from {contrib}',
    '{queueq}',
  ],
  slots: {
    jobverb: ['status of', 'cancel', 'kill', 'restart', 'resubmit', 'show logs for', "what's happening with", 'progress of', 'output of', 'retry', 'pause', 'resume', 'raise priority of', 'details of', 'cost of', 'runtime of', 'is done', 'check on'],
    jobid: ['4821', '117', '99812', '3000', '62', '7310', '18004', 'batch-77', 'j-2041', '5', 'render-12'],
    workload: ['a rendering job', 'my simulation', 'a data processing job', 'this docker container', 'a batch of 200 tasks', 'a video transcoding job', 'a CFD simulation', 'a GPU training job', 'the nightly ETL', 'a monte carlo run', 'the protein folding workload', 'a web crawl job', 'an inference batch', 'the genome alignment', 'a compile job', 'the backtest'],
    resources: ['with 4 GPUs', 'on 16 cores', 'with 32 GB of memory', 'on the cheapest nodes', 'in the eu-central region', 'on edge nodes near Paris', 'with high priority', 'as a spot job', 'before midnight', '', 'on 8 nodes', 'with a 2 hour time limit', 'on ARM nodes', 'close to Tokyo'],
    resource: ['GPU', 'CPU', 'memory', 'storage', 'A100', 'ARM', 'H100', 'compute', 'spot'],
    where: ['right now', 'in asia', 'on the edge nodes', 'this weekend', 'in the us-east region', 'across the fog network', 'tonight', 'in my pool', 'near Madrid'],
    priceq: ['how much does', "what's the price of", 'cost of', 'pricing for', 'rate for', 'how expensive is', 'price per hour for', 'quote me', 'what do you charge for'],
    priceitem: ['an hour of GPU time', 'a CPU core hour', 'reserved capacity', 'spot instances', 'storage per GB', 'egress bandwidth', 'a 4-GPU node for a day', 'priority scheduling', 'a dedicated node', 'running 1000 tasks', 'memory-optimized nodes', 'edge nodes'],
    nodeverb: ['register', 'remove', 'drain', 'reboot', 'check health of', 'show metrics for', 'decommission', 'cordon', 'update firmware on', 'list jobs on', 'what is the load on', 'uptime of'],
    nodename: ['fn-12', 'edge-berlin-3', 'gpu-node-7', 'my home server', 'the warehouse box', 'rack-4-node-2', 'n-5521', 'edge-7', 'the office nuc'],
    jobproblem: ['failed with exit code 1', 'has been pending for an hour', 'got preempted', 'is running slower than usual', 'ran out of memory', 'was killed by the scheduler', 'produced no output', 'is stuck at 99%', 'timed out', 'keeps restarting', 'cost more than expected'],
    contrib: ['sharing my GPU', 'my idle laptop', 'running a fog node', 'providing compute at night', 'my three raspberry pis', 'the office servers'],
    queueq: ['how long is the job queue', 'what is in my job queue', 'show pending jobs', 'how many jobs are running', 'list failed jobs', 'which of my jobs finished today', 'job history for this week', 'show all running compute jobs', 'current cluster load', 'compute usage this month'],
  },
  uploads: {
    stems: ['render_job', 'simulation', 'workload', 'job_spec', 'batch_tasks', 'pipeline', 'input_data', 'compute_job', 'etl_script', 'transcode', 'container_image', 'benchmark_run', 'frames', 'montecarlo', 'train_script'],
    files: [['tar.gz', 'application/gzip'], ['py', 'text/x-python'], ['zip', 'application/zip'], ['yaml', 'application/yaml'], ['sh', 'application/x-sh'], ['tar', 'application/x-tar'], ['csv', 'text/csv'], ['parquet', 'application/octet-stream']],
    messages: ['', '', 'run this on the fog cluster', 'submit as a compute job', 'execute on 8 GPU nodes', 'process on the cheapest nodes', 'run as a batch job tonight', 'input for my job', 'schedule this job', 'run it with 16 cores'],
  },
};

// ---------------------------------------------------------------------------------------
// p2p: the peer network (peers, mesh links, messages between peers, sync, NAT traversal)
const p2p = {
  seeds: [
    'show my connected peers',
    'which peers are online right now',
    'connect me to peer alice',
    'send "on my way" to peer bob',
    'my sync between phone and laptop is not working',
    'resync everything with my other devices',
    'what is my NAT type',
    'hole punching failed with peer 7f3a',
    'use a relay for peers I cannot reach directly',
    'show the mesh link quality to each neighbour',
    'how many hops away is peer carol',
    'block this peer, it is spamming',
    'trust peer QmNnooDu7bfjPF',
    'add bootstrap node /dns4/boot.example.org/tcp/4001',
    'the DHT has no peers after restart',
    'broadcast a message to the whole mesh',
    'any new messages from peers?',
    'did my message to dave get delivered',
    'peer discovery is not finding local devices',
    'why does my node only have 2 peers',
    'open the firewall port for the peer network',
    'upnp port mapping failed',
    'configure STUN and TURN servers',
    'sync conflict on budget.xlsx, keep the newest version',
    'pause sync while on mobile data',
    'which devices are in my sync group',
    'remove my old phone from the sync group',
    'how much data did I sync with peers today',
    'what is the round trip time to peer eu-relay-1',
    'the mesh is partitioned, two groups cannot see each other',
    'gossip protocol fanout setting',
    'share my music folder with peer frank',
    'stop relaying traffic for other peers',
    'limit upload bandwidth to peers to 1 MB/s',
    'my peer id changed after reinstall',
    'export my peer identity to the new laptop',
    'pair this device with my desktop',
    'peer connection drops every few minutes',
    'is my connection to peer gina direct or through a relay',
    'symmetric NAT, can I still connect directly?',
    'wie verbinde ich mich mit einem Peer hinter NAT?',
    'envoyer un message au pair lucie',
    'sincroniza mis fotos con el portátil',
    'wie viele Peers sind verbunden?',
    'la synchronisation est bloquée',
    'list the messages waiting for offline peers',
    'resend the failed message to peer henry',
    'join the team swarm',
    'create a private mesh for my family devices',
    'kick the unknown peer from our swarm',
    'set up an encrypted channel with peer ivan',
    'what is the packet loss on my mesh links',
    'show the peer graph',
    'my laptop and phone do not see each other on the same wifi',
    'the bridge to the p2p network is down',
    'reconnect to the relay',
    'how many peers are seeding the file',
    'subscribe to topic updates on the mesh',
    'unsubscribe from the chat topic',
    'mdns discovery on or off?',
    'sync my notes folder to my tablet over the mesh',
    'send a message to the peer on the other device',
    'the node in the mesh lost its links',
    'sync stuck at waiting for peers',
    'bootstrap nodes unreachable',
    'peer ping times',
    'my outbox to peers is full',
    'who are my neighbours in the mesh',
    'peer-to-peer transfer is slow',
    'exchange keys with a new peer',
    'revoke access for the lost tablet',
    'sync status of all devices',
    'libp2p connection refused',
  ],
  templates: [
    '{peerverb} peer {peername}',
    '{peerverb} peer {peername}',
    '{peerverb} {peername}',
    '{syncverb} {syncobj} {synctarget}',
    '{syncverb} {syncobj} {synctarget}',
    'sync {syncproblem}',
    '{natintro} {natq}',
    'hole punching {natproblem}',
    '{meshq}',
    '{meshq}',
    'send {msg} to {peername}',
    'broadcast {msg} to {meshgroup}',
    '{inboxq} {peername}',
    'peer {peername} {peerproblem}',
    'my connection to peers {peerproblem}',
  ],
  slots: {
    peerverb: ['connect to', 'disconnect from', 'block', 'unblock', 'ping', 'trust', 'send a message to', 'show messages from', 'check the link to', "what's the latency to", 'sync with', 'share the folder with', 'add', 'remove', 'pair with', 'is online:', 'route through'],
    peername: ['alice', 'node-7f2c', 'QmT5NvUtoM5n', '12D3KooWQx', 'the office laptop', 'my phone', 'bob', 'relay-2', 'peer 42', 'carol-desktop', 'the garage pi', 'kim', 'mesh-node-3'],
    syncverb: ['sync', 'resync', 'pause syncing', 'resume syncing', 'stop syncing', 'check sync status of', 'force sync', 'share and sync'],
    syncobj: ['my photos', 'the shared folder', 'my notes folder', 'the project files', 'my music library', 'the documents folder', 'my contacts', 'the design assets', 'my bookmarks', 'the team folder'],
    synctarget: ['with my laptop', 'across all my devices', 'with peer alice', 'over the mesh', 'to the backup peer', 'between the two offices', 'with my tablet', 'to the other device', ''],
    syncproblem: ['is stuck', 'keeps failing with peer bob', 'shows conflicts', 'is very slow', 'never finishes', 'says waiting for peer', 'duplicated my files', 'stopped after the update'],
    natintro: ['my router is behind', "I'm on", 'we have', 'the office uses', 'the peer is behind', 'both devices are behind'],
    natq: ['a symmetric NAT, what can I do', 'CGNAT, how do peers reach me', 'a strict firewall, peers cannot connect', 'double NAT, connections fail', 'a NAT that blocks UDP', 'port restricted cone NAT'],
    natproblem: ['fails every time', 'times out', 'works only with relay', 'is not supported by my router', 'succeeds but the link drops', 'fails with peer bob'],
    meshq: ['show the mesh topology', 'mesh link status', 'how many peers in the mesh', 'which links in the mesh are degraded', 'mesh latency overview', 'list my peers', 'peer count', 'show the routing table of the DHT', 'how many hops to reach the relay', 'list active connections to peers', 'who is relaying for me', 'bandwidth per peer link', 'show gossip stats', 'peers discovered via mdns'],
    msg: ['a hello', 'the meeting link', '"done for today"', 'this file', 'an encrypted message', 'my location', 'the invite code', '"server is back up"'],
    meshgroup: ['the whole mesh', 'all peers', 'the team swarm', 'my devices', 'everyone nearby', 'the family mesh'],
    inboxq: ['messages from', 'unread messages from', 'last message from', 'delivery status of my message to', 'chat history with', 'pending messages for'],
    peerproblem: ['keeps disconnecting', 'is unreachable', 'shows high latency', 'is not receiving my messages', 'times out during handshake', 'has a different protocol version', 'drops packets', 'only connects through relay'],
  },
  uploads: {
    stems: ['shared_folder', 'peer_keys', 'sync_manifest', 'bootstrap_peers', 'mesh_config', 'swarm_invite', 'trusted_peers', 'relay_config', 'device_pairing', 'peer_identity', 'photos_to_share', 'family_video', 'contact_card', 'peer_list', 'nat_config'],
    files: [['zip', 'application/zip'], ['pem', 'application/x-pem-file'], ['json', 'application/json'], ['txt', 'text/plain'], ['toml', 'application/toml'], ['key', 'application/octet-stream'], ['jpg', 'image/jpeg'], ['mp4', 'video/mp4']],
    messages: ['', '', 'share with peer alice', 'send this to peer bob over the mesh', 'sync to my other devices', 'import my peer identity', 'add these peers', 'use this relay config', 'send to everyone in the swarm', 'pair my devices with this'],
  },
};

const SERVICES = { twin, 'agent-controller': agents, knowledge, fog, p2p };
const CLIENT_APPS = {
  twin: ['twin-mobile', 'twin-web'],
  'agent-controller': ['forge-console', 'forge-cli'],
  knowledge: ['docs-portal', 'search-widget'],
  fog: ['fog-cli', 'fog-dashboard'],
  p2p: ['mesh-desktop', 'mesh-mobile'],
};
const SHARED_APPS = ['web', 'ios', 'android', 'slack-bot', 'cli'];

// ---------------------------------------------------------------------------------------
// Noise: casing, fillers, typos, fragments.
const PREFIXES = ['hey', 'hi,', 'quick question:', 'pls', 'can you', 'I need to', 'could you please', 'ok so', 'um', 'hello,', 'question -', 'yo'];
const SUFFIXES = ['?', 'thanks', 'asap', 'please', '!!', ':)', 'thx', 'right now', 'for me', '...'];

function typo(text) {
  const words = text.split(' ');
  const candidates = words.map((w, i) => [w, i]).filter(([w]) => /^[a-z]{5,}$/i.test(w));
  if (candidates.length === 0) return text;
  const [w, i] = pick(candidates);
  const p = 1 + Math.floor(rand() * (w.length - 2));
  const kind = Math.floor(rand() * 3);
  let out;
  if (kind === 0) out = w.slice(0, p) + w[p + 1] + w[p] + w.slice(p + 2); // swap
  else if (kind === 1) out = w.slice(0, p) + w.slice(p + 1); // drop
  else out = w.slice(0, p) + w[p] + w.slice(p); // double
  words[i] = out;
  return words.join(' ');
}

function noisy(text) {
  let t = text;
  if (chance(0.18)) t = typo(t);
  if (chance(0.06)) t = typo(t);
  if (chance(0.12) && !/^(can you|could you)/i.test(t)) t = `${pick(PREFIXES)} ${t}`;
  if (chance(0.12)) t = `${t.replace(/[?.!]+$/, '')} ${pick(SUFFIXES)}`;
  const c = rand();
  if (c < 0.35) t = t.toLowerCase();
  else if (c < 0.7) t = t.charAt(0).toUpperCase() + t.slice(1);
  else if (c < 0.73) t = t.toUpperCase();
  if (chance(0.05)) t = t.replace(/[?.!]+$/, '');
  return t.replace(/\s+/g, ' ').trim();
}

function fieldFor(i) {
  const r = rand();
  return r < 0.5 ? 'query' : r < 0.75 ? 'prompt' : 'message';
}

function queryExample(service, text, i) {
  const body = { [fieldFor(i)]: text };
  if (chance(0.15)) body.session_id = `s-${Math.floor(rand() * 1e6)}`;
  if (chance(0.08)) body.stream = false;
  const request = { method: 'POST', path: '/v1/query', body };
  if (chance(0.08)) request.headers = { 'x-client-app': chance(0.6) ? pick(CLIENT_APPS[service]) : pick(SHARED_APPS) };
  return { request, service };
}

function uploadExample(service, spec) {
  const [ext, type] = pick(spec.files);
  const stem = pick(spec.stems);
  const variants = [stem, stem.replace(/_/g, '-'), `${stem}_${2020 + Math.floor(rand() * 6)}`, `${stem}_v${1 + Math.floor(rand() * 4)}`, stem.toUpperCase(), `final_${stem}`];
  const name = `${pick(variants)}.${ext}`;
  const message = pick(spec.messages);
  const request = { method: 'POST', path: '/v1/upload', file: { name, type } };
  if (message !== '') request.body = { message: noisy(message) };
  return { request, service };
}

const lines = [];
const passOf = new Map();
for (const [service, spec] of Object.entries(SERVICES)) {
  const seen = new Set();
  const texts = [];
  const passes = [];
  let pass = 'templates';
  reseed(`${service}:templates`);
  const add = (t) => {
    const key = t.toLowerCase();
    if (seen.has(key) || HELD_OUT.has(normText(t))) return false;
    seen.add(key);
    texts.push(t);
    passes.push(pass);
    return true;
  };
  for (const s of spec.seeds) add(noisy(s));
  // A second, noisier take on a third of the seeds (typo'd, reworded casing).
  for (const s of spec.seeds) if (chance(0.33)) add(noisy(typo(s)));
  let guard = 0;
  while (texts.length < QUERIES_PER_SERVICE && guard++ < 100_000) add(noisy(expand(pick(spec.templates), spec.slots)));
  // Pass 3 (phrasing.mjs): other people's phrasing, as written, with noise, and wrapped in a
  // service-neutral opener or closer (long requests, code-mixed politeness).
  pass = 'phrasing';
  reseed(`${service}:phrasing`);
  for (const p of PHRASINGS[service] ?? []) {
    add(p);
    add(noisy(p));
    if (chance(0.6)) {
      const r = rand();
      const wrapped = r < 0.4 ? `${pick(OPENERS)} ${p}` : r < 0.8 ? `${p.replace(/[?.!]+$/, '')}, ${pick(CLOSERS)}` : `${pick(OPENERS)} ${p} ${pick(CLOSERS)}`;
      add(chance(0.3) ? noisy(wrapped) : wrapped);
    }
  }
  // Passes 4-8 (phrasing-4.mjs ... -8): the same treatment, with pass 4's
  // wrappers as well as pass 3's.
  const openers = [...OPENERS, ...OPENERS_4];
  const closers = [...CLOSERS, ...CLOSERS_4];
  const passes45 = [
    ['pass4', PHRASINGS_4[service] ?? []],
    ['pass5', PHRASINGS_5[service] ?? []],
    ['pass6', PHRASINGS_6[service] ?? []],
    ['pass7', PHRASINGS_7[service] ?? []],
    ['pass8', PHRASINGS_8[service] ?? []],
  ];
  for (const [name, list] of passes45) for (const [k, p] of list.entries()) {
    pass = name;
    if (k === 0) reseed(`${service}:${name}`);
    add(p);
    add(noisy(p));
    if (chance(0.6)) {
      const r = rand();
      const wrapped = r < 0.4 ? `${pick(openers)} ${p}` : r < 0.8 ? `${p.replace(/[?.!]+$/, '')}, ${pick(closers)}` : `${pick(openers)} ${p} ${pick(closers)}`;
      add(chance(0.3) ? noisy(wrapped) : wrapped);
    }
  }
  reseed(`${service}:requests`);
  texts.forEach((t, i) => {
    const ex = queryExample(service, t, i);
    passOf.set(ex, passes[i]);
    lines.push(ex);
  });
  const uploads = new Set();
  reseed(`${service}:uploads`);
  guard = 0;
  while (uploads.size < 40 && guard++ < 10_000) {
    const ex = uploadExample(service, spec.uploads);
    const key = JSON.stringify(ex);
    if (!uploads.has(key)) {
      uploads.add(key);
      lines.push(ex);
    }
  }
}
// Interleave services (a stable shuffle) so the file reads as a mixed stream.
reseed('shuffle');
for (let i = lines.length - 1; i > 0; i--) {
  const j = Math.floor(rand() * (i + 1));
  [lines[i], lines[j]] = [lines[j], lines[i]];
}
writeFileSync(OUT, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
if (SPLIT_DIR !== undefined) {
  const byPass = {};
  for (const l of lines) (byPass[passOf.get(l) ?? 'templates'] ??= []).push(l);
  for (const [name, ls] of Object.entries(byPass)) writeFileSync(join(SPLIT_DIR, `pass-${name}.jsonl`), ls.map((l) => JSON.stringify(l)).join('\n') + '\n');
}
const counts = {};
for (const l of lines) counts[l.service] = (counts[l.service] ?? 0) + 1;
process.stdout.write(`wrote ${lines.length} examples to ${OUT}: ${JSON.stringify(counts)}\n`);
