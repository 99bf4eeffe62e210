/*
 * Domain lexicons of the routing model (issue 15, "features"): words that mean the same thing
 * to routing, in the languages users write in, grouped under one concept. A word of a group
 * adds the concept as a feature beside the word itself, so a request in a language or with a
 * synonym the training data barely has still lights up what its siblings taught the model
 * ("przypomnij" shares `remind` with "remind", "erinnere", "ricordami"). Written from the
 * services' domains, not from any held-out file. Words are matched after the extractor's
 * folding (lowercase, accents off when `foldAccents`, digits folded), whole words only.
 *
 * A lexicon is named in the model file (`features.lexicon`); its words never change once a
 * model uses it: a new list is a new name.
 */

export const LEXICONS: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>> = {
  'domain-1': {
    // twin: the personal assistant
    remind: ['remind', 'reminder', 'reminders', 'remindme', 'rmd', 'nudge', 'erinnere', 'erinnern', 'erinnerung', 'rappelle', 'rappel', 'rappeler', 'ricordami', 'ricorda', 'promemoria', 'recuerdame', 'recordatorio', 'recordar', 'lembre', 'lembra', 'lembrete', 'lembrar', 'przypomnij', 'przypomnienie', 'hatirlat', 'paminn', 'paminnelse', 'herinner', 'herinnering', 'yaad'],
    note: ['note', 'notes', 'jot', 'journal', 'diary', 'notiz', 'notizen', 'notiere', 'tagebuch', 'noter', 'carnet', 'journal', 'appunta', 'appunti', 'nota', 'note', 'diario', 'anota', 'anotar', 'apunta', 'apuntame', 'notas', 'zanotuj', 'notatka', 'dziennik', 'anteckning', 'notitie', 'dagboek', 'likh'],
    errand: ['grocery', 'groceries', 'shopping', 'einkaufsliste', 'courses', 'spesa', 'compras', 'zakupy', 'todo', 'chores', 'errands', 'birthday', 'geburtstag', 'anniversaire', 'compleanno', 'cumpleanos', 'aniversario', 'dentist', 'doctor', 'arzt', 'medecin', 'medico', 'lekarz', 'pills', 'medication', 'medikamente', 'medicaments'],
    feelings: ['feel', 'feeling', 'sad', 'lonely', 'bored', 'vent', 'mood', 'chat', 'talk', 'joke', 'cheer', 'sleep', 'tired', 'stressed', 'anxious'],
    // agent-controller: Agent Forge
    agent: ['agent', 'agents', 'bot', 'bots', 'chatbot', 'assistant', 'agente', 'agentes', 'agenti', 'agenta', 'ajan', 'agenten'],
    agentOps: ['deploy', 'redeploy', 'rollback', 'checkpoint', 'checkpoints', 'guardrail', 'guardrails', 'prompt', 'tools', 'tool', 'eval', 'evals', 'evaluation', 'finetune', 'retrain', 'retreina', 'reward', 'episodes', 'rl', 'herramienta', 'strumento', 'ferramenta', 'werkzeug', 'outil'],
    // knowledge: documents and general questions
    document: ['document', 'documents', 'doc', 'docs', 'report', 'reports', 'minutes', 'handbook', 'manual', 'wiki', 'policy', 'contract', 'clause', 'whitepaper', 'slides', 'deck', 'thesis', 'paper', 'article', 'pdf', 'dokument', 'bericht', 'protokoll', 'handbuch', 'rapport', 'compte', 'manuel', 'documento', 'rapporto', 'verbale', 'manuale', 'relatorio', 'informe', 'raport', 'dokumentu', 'rapor', 'rapporten', 'verslag'],
    summarise: ['summary', 'summarise', 'summarize', 'summarise', 'tldr', 'recap', 'overview', 'takeaways', 'zusammenfassung', 'zusammenfassen', 'fasse', 'resume', 'resumen', 'resumir', 'riassumi', 'riassunto', 'sintesi', 'streść', 'stresc', 'streszczenie', 'ozet', 'sammanfatta', 'samenvatting'],
    explain: ['what', 'who', 'why', 'when', 'explain', 'define', 'definition', 'meaning', 'difference', 'history', 'capital', 'population', 'invented', 'discovered', 'wrote', 'painted', 'wer', 'warum', 'erklare', 'quest', 'qui', 'pourquoi', 'explique', 'chi', 'perche', 'spiega', 'quem', 'porque', 'explica', 'explicame', 'quien', 'cual', 'kto', 'dlaczego', 'nedir', 'kim', 'vad', 'vem', 'varfor', 'wat', 'waarom', 'kya', 'samjhao'],
    source: ['source', 'sources', 'cite', 'citation', 'citations', 'reference', 'references', 'quelle', 'quellen', 'fonte', 'fuente', 'fuentes', 'zrodlo', 'kaynak'],
    // fog: compute jobs on the cluster
    job: ['job', 'jobs', 'run', 'runs', 'batch', 'task', 'tasks', 'workload', 'render', 'simulation', 'script', 'calcul', 'calcolo', 'calculo', 'trabajo', 'lavoro', 'zadanie', 'jobb', 'taak', 'berechnung', 'rechenjob'],
    compute: ['gpu', 'gpus', 'cpu', 'cpus', 'cores', 'core', 'cluster', 'kluster', 'klustret', 'cluster', 'cluster', 'clúster', 'kume', 'kumede', 'scheduler', 'queue', 'queued', 'pending', 'preempted', 'a000', 'h000', 'ram', 'memory', 'runtime', 'compute', 'rechenzeit', 'calcolo', 'computo'],
    cost: ['cost', 'costs', 'price', 'pricing', 'budget', 'billing', 'kostet', 'kosten', 'preis', 'coute', 'prix', 'costa', 'costo', 'custa', 'cuesta', 'precio', 'kosztuje', 'koszt', 'fiyat', 'kostar', 'kost'],
    // p2p: the peer network
    peer: ['peer', 'peers', 'pair', 'unpair', 'paired', 'pairing', 'mesh', 'swarm', 'gossip', 'dht', 'relay', 'relays', 'nat', 'upnp', 'hole', 'punching', 'stun', 'turn', 'bootstrap', 'pares', 'pari', 'appaire', 'pareia', 'pareja', 'peery', 'peerami'],
    connect: ['connect', 'connected', 'connection', 'disconnect', 'reachable', 'unreachable', 'online', 'offline', 'latency', 'bandwidth', 'port', 'firewall', 'router', 'sync', 'syncing', 'verbindung', 'verbinden', 'erreichbar', 'connexion', 'connecter', 'connessione', 'collega', 'conexao', 'conecta', 'conexion', 'polaczenie', 'laczy', 'baglanti', 'anslutning', 'verbinding'],
    device: ['device', 'devices', 'phone', 'laptop', 'tablet', 'gerat', 'geraete', 'telephone', 'portable', 'telefono', 'portatile', 'celular', 'telefone', 'portatil', 'telefon', 'cihaz', 'enhet'],
    node: ['node', 'nodes', 'knoten', 'noeud', 'nœud', 'nodo', 'nodi', 'wezel', 'węzeł', 'dugum', 'düğüm', 'nod'],
  },
};

/**
 * The concept of each word of a lexicon: word hash (as the extractor computes it) -> the
 * concept's name hashed with `conceptHash`. A word listed under two concepts keeps the first.
 */
export function lexiconTable(name: string, hashWord: (word: string) => number, conceptHash: (concept: string) => number): Map<number, { hash: number; concept: string }> {
  const lexicon = LEXICONS[name];
  if (lexicon === undefined) throw new RangeError(`unknown lexicon "${name}" (known: ${Object.keys(LEXICONS).join(', ')})`);
  const table = new Map<number, { hash: number; concept: string }>();
  for (const [concept, words] of Object.entries(lexicon)) {
    const entry = { hash: conceptHash(concept), concept };
    for (const w of words) {
      const h = hashWord(w);
      if (!table.has(h)) table.set(h, entry);
    }
  }
  return table;
}
