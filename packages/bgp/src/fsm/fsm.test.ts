import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.ts';
import { Fsm, type FsmIo, FsmState } from './fsm.ts';

function setup(opts: { passive?: boolean; holdTime?: number } = {}) {
  const clock = new ManualClock();
  const log: string[] = [];
  const io: FsmIo = {
    connect: () => log.push('connect'),
    dropConnection: () => log.push('drop'),
    sendOpen: () => log.push('open'),
    sendKeepalive: () => log.push('keepalive'),
    sendNotification: (n) => log.push(`notify ${n.code}/${n.subcode}`),
    stateChanged: (from, to) => log.push(`${from}->${to}`),
  };
  const fsm = new Fsm({
    clock,
    io,
    passive: opts.passive ?? false,
    timers: { connectRetryTime: 5, holdTime: opts.holdTime ?? 90, idleHoldTime: 1 },
    random: () => 0.999,
  });
  return { clock, log, fsm };
}

function establish(fsm: Fsm, hold = 9) {
  fsm.start();
  fsm.handle('TcpCrAcked');
  fsm.handle('BgpOpen', { holdTime: hold });
  fsm.handle('KeepAliveMsg');
}

describe('FSM (RFC 4271 §8)', () => {
  it('walks Idle → Connect → OpenSent → OpenConfirm → Established', () => {
    const { fsm, log } = setup();
    establish(fsm);
    expect(fsm.state).toBe(FsmState.Established);
    expect(log).toEqual([
      'connect',
      'Idle->Connect',
      'open',
      'Connect->OpenSent',
      'keepalive',
      'OpenSent->OpenConfirm',
      'OpenConfirm->Established',
    ]);
  });

  it('sends keepalives every hold/3 and expires the hold timer with NOTIFICATION 4/0', () => {
    const { fsm, log, clock } = setup();
    establish(fsm, 9);
    log.length = 0;
    clock.advance(3000);
    expect(log).toEqual(['keepalive']);
    fsm.handle('KeepAliveMsg');
    clock.advance(8999);
    expect(fsm.state).toBe('Established');
    clock.advance(1);
    expect(fsm.state).toBe('Idle');
    expect(log).toContain('notify 4/0');
    expect(fsm.lastError).toMatch(/^hold timer expired/);
    expect(fsm.lastErrorKind).toBe('hold-timer-expired');
  });

  it('runs no timers with a negotiated hold time of 0', () => {
    const { fsm, clock } = setup();
    establish(fsm, 0);
    expect(clock.nextDue()).toBeUndefined();
  });

  it('retries connections every ConnectRetry, however many attempts failed', () => {
    const { fsm, log, clock } = setup();
    fsm.start();
    const gaps: number[] = [];
    for (let i = 0; i < 5; i++) {
      fsm.handle('TcpConnectionFails', { reason: 'refused' });
      const due = clock.nextDue()!;
      gaps.push(Math.round(due / 100) / 10);
      clock.advance(due);
    }
    expect(gaps).toEqual([5, 5, 5, 5, 5]);
    expect(log.filter((l) => l === 'connect')).toHaveLength(6);
    // Refused connections are not session failures: the idle hold after an error stays short.
    expect(fsm.failures).toBe(0);
  });

  it('doubles the idle hold per consecutive session failure, reset by Established', () => {
    const { fsm, clock } = setup();
    fsm.start();
    const holds: number[] = [];
    for (let i = 0; i < 3; i++) {
      fsm.handle('TcpCrAcked');
      fsm.handle('NotifMsg', { reason: 'rejected' });
      holds.push(Math.round(clock.nextDue()! / 100) / 10);
      clock.advance(clock.nextDue()!);
    }
    expect(holds).toEqual([1, 2, 4]);
    fsm.handle('TcpCrAcked');
    fsm.handle('BgpOpen', { holdTime: 9 });
    fsm.handle('KeepAliveMsg');
    expect(fsm.failures).toBe(0);
  });

  it('waits passively in Active and never connects', () => {
    const { fsm, log, clock } = setup({ passive: true });
    fsm.start();
    expect(fsm.state).toBe('Active');
    clock.advance(600_000);
    expect(log).not.toContain('connect');
    fsm.handle('TcpConnectionConfirmed');
    expect(fsm.state).toBe('OpenSent');
  });

  it('treats unexpected events as FSM errors with the RFC 6608 subcode', () => {
    const { fsm, log } = setup();
    establish(fsm);
    fsm.handle('BgpOpen');
    expect(fsm.state).toBe('Idle');
    expect(log).toContain('notify 5/3');
  });

  it('dumps a collision loser with Cease/7 and restarts automatically from Idle', () => {
    const { fsm, log, clock } = setup();
    fsm.start();
    fsm.handle('TcpCrAcked');
    fsm.handle('BgpOpen', { holdTime: 90 });
    fsm.handle('OpenCollisionDump');
    expect(log).toContain('notify 6/7');
    expect(fsm.state).toBe('Idle');
    clock.advance(clock.nextDue()!);
    expect(fsm.state).toBe('Connect');
  });

  it('ManualStop sends Cease/2 and stays down', () => {
    const { fsm, log, clock } = setup();
    establish(fsm);
    fsm.stop();
    expect(log).toContain('notify 6/2');
    expect(clock.nextDue()).toBeUndefined();
  });
});
