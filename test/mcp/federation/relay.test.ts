import { describe, expect, it } from 'vitest';
import { AgentCall, ParkedCalls, type AgentLink } from '../../../mcp/federation/relay.js';

/*
 * The relay of upstream-initiated requests to the agent whose call caused them: a 2026-07-28
 * agent gets them as input requests (the call parked in between), a 2025 agent is asked
 * directly, an agent that did not declare the capability is not asked at all.
 */

const modern = (capabilities: Record<string, unknown> | undefined, notes: string[] = []): AgentLink => ({
  era: 'modern',
  capabilities,
  notify: async (method) => {
    notes.push(method);
  },
});

describe('AgentCall', () => {
  it('2026-07-28: requests of one round are collected, put to the agent once, and answered by its inputResponses', async () => {
    const call = new AgentCall(modern({ sampling: {}, elicitation: {} }));
    const signal = new AbortController().signal;
    const needs = call.needsInput();
    const sample = call.ask('sampling/createMessage', { maxTokens: 5 }, signal);
    const elicit = call.ask('elicitation/create', { message: 'name?' }, signal);
    await needs;
    const requests = call.takeInputRequests() as Record<string, { method: string; params?: unknown }>;
    expect(Object.values(requests).map((r) => r.method).sort()).toEqual(['elicitation/create', 'sampling/createMessage']);
    // Put to the agent once.
    expect(call.takeInputRequests()).toEqual({});
    const [sampleKey] = Object.entries(requests).find(([, r]) => r.method === 'sampling/createMessage')!;
    const [elicitKey] = Object.entries(requests).find(([, r]) => r.method === 'elicitation/create')!;
    // Unknown keys and non-objects are ignored (the values come from the agent).
    expect(call.answer({ nope: { x: 1 }, [elicitKey]: 42 })).toBe(0);
    expect(call.answer({ [sampleKey]: { role: 'assistant', content: { type: 'text', text: 'hi' } } })).toBe(1);
    await expect(sample).resolves.toMatchObject({ role: 'assistant' });
    call.resendAll();
    expect(Object.keys(call.takeInputRequests())).toEqual([elicitKey]);
    expect(call.answer({ [elicitKey]: { action: 'decline' } })).toBe(1);
    await expect(elicit).resolves.toEqual({ action: 'decline' });
  });

  it('does not ask for what the agent did not declare: method not found, naming the capability', async () => {
    const call = new AgentCall(modern({ elicitation: {} }));
    await expect(call.ask('sampling/createMessage', {}, new AbortController().signal)).rejects.toMatchObject({ code: -32601, message: expect.stringContaining('sampling capability') });
    await expect(call.ask('roots/list', {}, new AbortController().signal)).rejects.toMatchObject({ code: -32601 });
    const parked = new AgentCall(modern({ sampling: {} }));
    parked.detach();
    await expect(parked.ask('sampling/createMessage', {}, new AbortController().signal)).rejects.toMatchObject({ code: -32601 });
  });

  it('2025 agents are asked directly on their request', async () => {
    const sent: string[] = [];
    const call = new AgentCall({
      era: 'legacy',
      capabilities: undefined,
      notify: async () => {},
      send: async (method) => {
        sent.push(method);
        return { action: 'accept', content: { ok: true } };
      },
    });
    await expect(call.ask('elicitation/create', { message: 'ok?' }, new AbortController().signal)).resolves.toEqual({ action: 'accept', content: { ok: true } });
    expect(sent).toEqual(['elicitation/create']);
  });

  it('the upstream cancelling its request, or the call ending, fails what waits', async () => {
    const call = new AgentCall(modern({ sampling: {} }));
    const upstream = new AbortController();
    const cancelled = call.ask('sampling/createMessage', {}, upstream.signal);
    upstream.abort();
    await expect(cancelled).rejects.toThrow('cancelled by the upstream');
    const ended = call.ask('sampling/createMessage', {}, new AbortController().signal);
    call.end('the call ended');
    await expect(ended).rejects.toThrow('the call ended');
  });

  it('notifications go to the current request and are flushed before the answer; none while parked', async () => {
    const notes: string[] = [];
    const call = new AgentCall(modern({}, notes));
    call.notify('notifications/progress', { progress: 1 });
    await call.flush();
    expect(notes).toEqual(['notifications/progress']);
    call.detach();
    call.notify('notifications/message', {});
    await call.flush();
    expect(notes).toEqual(['notifications/progress']);
  });
});

describe('ParkedCalls', () => {
  it('gives a parked call back to its owner only, once', () => {
    const parked = new ParkedCalls<string>();
    const call = new AgentCall(modern({}));
    const id = parked.park(call, Promise.resolve('r'), 'p:alice')!;
    expect(call.link).toBeUndefined();
    expect(parked.take(id, 'p:mallory')).toBeUndefined();
    expect(parked.take(id, 'p:alice')?.call).toBe(call);
    expect(parked.take(id, 'p:alice')).toBeUndefined();
  });

  it('is bounded, and drops (aborting the upstream call) what is not resumed in time', async () => {
    const parked = new ParkedCalls<string>({ max: 1, ttlMs: 20 });
    const call = new AgentCall(modern({ sampling: {} }));
    const waiting = call.ask('sampling/createMessage', {}, new AbortController().signal);
    const id = parked.park(call, new Promise(() => {}), 'p:a')!;
    expect(parked.park(new AgentCall(modern({})), Promise.resolve('x'), 'p:b')).toBeNull();
    await expect(waiting).rejects.toThrow('did not answer in time');
    expect(call.abort.signal.aborted).toBe(true);
    expect(parked.take(id, 'p:a')).toBeUndefined();
    expect(parked.size).toBe(0);
  });
});
