/**
 * The BGP finite state machine of RFC 4271 §8 as an explicit state × event table. The FSM owns
 * its timers (through an injectable Clock) and asks its host to do I/O through FsmIo; it never
 * touches a socket itself.
 */

import { type SessionError, type SessionErrorKind, sentNotification } from '../session/session-error.ts';
import { CeaseSubcode, ErrorCode } from '../wire/constants.ts';
import type { Clock, TimerHandle } from './clock.ts';

export const FsmState = {
  Idle: 'Idle',
  Connect: 'Connect',
  Active: 'Active',
  OpenSent: 'OpenSent',
  OpenConfirm: 'OpenConfirm',
  Established: 'Established',
} as const;
export type FsmState = (typeof FsmState)[keyof typeof FsmState];

/** RFC 4271 §8.1 events (the optional DelayOpen and TcpConnection_Valid ones are not used). */
export type FsmEvent =
  | 'ManualStart' // 1
  | 'ManualStop' // 2
  | 'AutomaticStart' // 3
  | 'ManualStartPassive' // 4
  | 'AutomaticStartPassive' // 5
  | 'ConnectRetryTimerExpires' // 9
  | 'HoldTimerExpires' // 10
  | 'KeepaliveTimerExpires' // 11
  | 'IdleHoldTimerExpires' // §8.1.1 DampPeerOscillations
  | 'TcpCrAcked' // 16: our outgoing connection completed
  | 'TcpConnectionConfirmed' // 17: the peer's connection was accepted
  | 'TcpConnectionFails' // 18
  | 'BgpOpen' // 19
  | 'BgpHeaderErr' // 21
  | 'BgpOpenMsgErr' // 22
  | 'OpenCollisionDump' // 23
  | 'NotifMsgVerErr' // 24
  | 'NotifMsg' // 25
  | 'KeepAliveMsg' // 26
  | 'UpdateMsg' // 27
  | 'UpdateMsgErr' // 28
  | 'RouteRefreshMsg';

type Action =
  | 'connect'
  | 'drop'
  | 'sendOpen'
  | 'sendKeepalive'
  | 'sendErrorNotification' // the NOTIFICATION given with the event
  | 'sendHoldExpired'
  | 'sendCeaseShutdown'
  | 'sendCeaseCollision'
  | 'startConnectRetry'
  | 'stopConnectRetry'
  | 'startHoldLarge'
  | 'startHoldNegotiated'
  | 'restartHold'
  | 'startKeepalive'
  | 'stopTimers'
  | 'countFailure'
  | 'resetFailures'
  | 'established';

interface Transition {
  to: FsmState;
  do: readonly Action[];
}

const S = FsmState;
const toIdle = (...extra: Action[]): Transition => ({
  to: S.Idle,
  do: [...extra, 'drop', 'stopTimers', 'countFailure'],
});
const toOpenSent: Transition = { to: S.OpenSent, do: ['stopConnectRetry', 'sendOpen', 'startHoldLarge'] };

/** RFC 4271 §8.2.2, one row per state; missing cells fall to the FSM-error default below. */
export const FSM_TABLE: Readonly<Record<FsmState, Partial<Record<FsmEvent, Transition>>>> = {
  Idle: {
    ManualStart: { to: S.Connect, do: ['resetFailures', 'startConnectRetry', 'connect'] },
    AutomaticStart: { to: S.Connect, do: ['startConnectRetry', 'connect'] },
    ManualStartPassive: { to: S.Active, do: ['resetFailures'] },
    AutomaticStartPassive: { to: S.Active, do: [] },
  },
  Connect: {
    ManualStop: { to: S.Idle, do: ['drop', 'stopTimers', 'resetFailures'] },
    ConnectRetryTimerExpires: { to: S.Connect, do: ['drop', 'startConnectRetry', 'connect'] },
    TcpCrAcked: toOpenSent,
    TcpConnectionConfirmed: toOpenSent,
    // §8.2.2 Connect: a failed attempt waits in Active for the next ConnectRetry. A refused or
    // unanswered TCP connection is not a session failure: it does not lengthen the idle hold.
    TcpConnectionFails: { to: S.Active, do: ['drop', 'startConnectRetry'] },
    NotifMsgVerErr: { to: S.Idle, do: ['drop', 'stopTimers'] },
  },
  Active: {
    ManualStop: { to: S.Idle, do: ['drop', 'stopTimers', 'resetFailures'] },
    ConnectRetryTimerExpires: { to: S.Connect, do: ['startConnectRetry', 'connect'] },
    TcpCrAcked: toOpenSent,
    TcpConnectionConfirmed: toOpenSent,
    TcpConnectionFails: { to: S.Active, do: ['drop'] },
    NotifMsgVerErr: { to: S.Idle, do: ['drop', 'stopTimers'] },
  },
  OpenSent: {
    ManualStop: { to: S.Idle, do: ['sendCeaseShutdown', 'drop', 'stopTimers', 'resetFailures'] },
    HoldTimerExpires: toIdle('sendHoldExpired'),
    TcpConnectionFails: { to: S.Active, do: ['drop', 'stopTimers', 'startConnectRetry'] },
    BgpOpen: {
      to: S.OpenConfirm,
      do: ['stopConnectRetry', 'sendKeepalive', 'startKeepalive', 'startHoldNegotiated'],
    },
    BgpHeaderErr: toIdle('sendErrorNotification'),
    BgpOpenMsgErr: toIdle('sendErrorNotification'),
    OpenCollisionDump: toIdle('sendCeaseCollision'),
    NotifMsgVerErr: { to: S.Idle, do: ['drop', 'stopTimers'] },
    NotifMsg: toIdle(),
  },
  OpenConfirm: {
    ManualStop: { to: S.Idle, do: ['sendCeaseShutdown', 'drop', 'stopTimers', 'resetFailures'] },
    HoldTimerExpires: toIdle('sendHoldExpired'),
    KeepaliveTimerExpires: { to: S.OpenConfirm, do: ['sendKeepalive', 'startKeepalive'] },
    TcpConnectionFails: toIdle(),
    NotifMsg: toIdle(),
    NotifMsgVerErr: { to: S.Idle, do: ['drop', 'stopTimers'] },
    BgpHeaderErr: toIdle('sendErrorNotification'),
    BgpOpenMsgErr: toIdle('sendErrorNotification'),
    OpenCollisionDump: toIdle('sendCeaseCollision'),
    KeepAliveMsg: { to: S.Established, do: ['restartHold', 'resetFailures', 'established'] },
  },
  Established: {
    ManualStop: { to: S.Idle, do: ['sendCeaseShutdown', 'drop', 'stopTimers', 'resetFailures'] },
    HoldTimerExpires: toIdle('sendHoldExpired'),
    KeepaliveTimerExpires: { to: S.Established, do: ['sendKeepalive', 'startKeepalive'] },
    TcpConnectionFails: toIdle(),
    NotifMsg: toIdle(),
    NotifMsgVerErr: toIdle(),
    KeepAliveMsg: { to: S.Established, do: ['restartHold'] },
    UpdateMsg: { to: S.Established, do: ['restartHold'] },
    RouteRefreshMsg: { to: S.Established, do: ['restartHold'] },
    UpdateMsgErr: toIdle('sendErrorNotification'),
    BgpHeaderErr: toIdle('sendErrorNotification'),
    OpenCollisionDump: toIdle('sendCeaseCollision'),
  },
};

/** RFC 6608: FSM error subcodes by the state the unexpected event arrived in. */
const FSM_ERROR_SUBCODE: Partial<Record<FsmState, number>> = { OpenSent: 1, OpenConfirm: 2, Established: 3 };

export interface FsmTimers {
  /**
   * Seconds; RFC 4271 §10 suggests 120. A fixed interval (with jitter), as in BIRD, FRR and
   * GoBGP: a peer that comes back is reached within one interval however long it was away.
   */
  connectRetryTime: number;
  /** Our proposed hold time in seconds (0 = no keepalives, no hold timer). */
  holdTime: number;
  /** Keepalive seconds; default negotiated hold / 3. */
  keepaliveTime?: number;
  /** §8.2.1.1: the hold timer while waiting for OPEN, 4 minutes suggested. */
  openHoldTime: number;
  /** Seconds before an automatic restart from Idle after an error; doubles up to 32×. */
  idleHoldTime: number;
}

export const DEFAULT_TIMERS: FsmTimers = {
  connectRetryTime: 120,
  holdTime: 90,
  openHoldTime: 240,
  idleHoldTime: 5,
};

export interface Notification {
  code: number;
  subcode: number;
  data?: Uint8Array;
}

export interface FsmIo {
  connect(): void;
  dropConnection(): void;
  sendOpen(): void;
  sendKeepalive(): void;
  sendNotification(n: Notification): void;
  stateChanged(from: FsmState, to: FsmState, event: FsmEvent): void;
}

export interface FsmOptions {
  clock: Clock;
  io: FsmIo;
  timers?: Partial<FsmTimers>;
  passive?: boolean;
  /** Restart automatically from Idle after an error (default true). */
  autoRestart?: boolean;
  /** Jitter source in [0,1); RFC 4271 §10 asks for 75–100 % of the interval. */
  random?: () => number;
}

export class Fsm {
  state: FsmState = S.Idle;
  readonly timers: FsmTimers;
  passive: boolean;
  autoRestart: boolean;
  /**
   * Consecutive session failures (errors back to Idle) since the last Established; each doubles
   * the idle hold before the next automatic start (§8.1.1 DampPeerOscillations).
   */
  failures = 0;
  negotiatedHold = 0;
  lastError: string | undefined;
  /** What kind of failure `lastError` is (for status readers); undefined for none or internal ones. */
  lastErrorKind: SessionErrorKind | undefined;
  #clock: Clock;
  #io: FsmIo;
  #random: () => number;
  #connectRetry: TimerHandle | undefined;
  #hold: TimerHandle | undefined;
  #keepalive: TimerHandle | undefined;
  #idleHold: TimerHandle | undefined;
  #stopped = true;
  #pending: Notification | undefined;

  constructor(opts: FsmOptions) {
    this.#clock = opts.clock;
    this.#io = opts.io;
    this.timers = { ...DEFAULT_TIMERS, ...opts.timers };
    this.passive = opts.passive ?? false;
    this.autoRestart = opts.autoRestart ?? true;
    this.#random = opts.random ?? Math.random;
  }

  start(): void {
    this.#stopped = false;
    this.handle(this.passive ? 'ManualStartPassive' : 'ManualStart');
  }

  stop(): void {
    this.#stopped = true;
    this.#clearIdleHold();
    this.handle('ManualStop');
  }

  /**
   * Feed one event. `notification` is the NOTIFICATION to send for error events; `holdTime`
   * the negotiated hold time for BgpOpen.
   */
  handle(
    event: FsmEvent,
    info: { notification?: Notification; holdTime?: number; reason?: string; error?: SessionError } = {},
  ): void {
    const from = this.state;
    let t = FSM_TABLE[from][event];
    if (!t) {
      if (from === S.Idle) return; // §8.2.2 Idle: other events are ignored
      if (from === S.Connect || from === S.Active) t = toIdle();
      else {
        // §8.2.2: an event unexpected in this state is an FSM error.
        info = { notification: { code: ErrorCode.Fsm, subcode: FSM_ERROR_SUBCODE[from] ?? 0 } };
        t = toIdle('sendErrorNotification');
      }
    }
    if (info.holdTime !== undefined) this.negotiatedHold = info.holdTime;
    this.#pending = info.notification;
    if (info.error) {
      this.lastError = info.error.message;
      this.lastErrorKind = info.error.kind;
    } else if (info.notification && t.to === S.Idle) {
      const n = info.notification;
      this.#setError(sentNotification(n.code, n.subcode, info.reason));
    } else if (info.reason) {
      this.lastError = info.reason;
      this.lastErrorKind = undefined;
    }
    this.state = t.to;
    for (const a of t.do) this.#run(a);
    this.#pending = undefined;
    if (from !== t.to) this.#io.stateChanged(from, t.to, event);
    if (t.to === S.Idle && from !== S.Idle && !this.#stopped && this.autoRestart && event !== 'ManualStop') {
      this.#scheduleRestart();
    }
  }

  /** Current ConnectRetry interval in ms, with RFC 4271 §10's 75–100 % jitter. */
  connectRetryMs(): number {
    return this.timers.connectRetryTime * 1000 * (0.75 + 0.25 * this.#random());
  }

  keepaliveMs(): number {
    const hold = this.negotiatedHold;
    const ka =
      this.timers.keepaliveTime !== undefined ? Math.min(this.timers.keepaliveTime, hold / 3) : hold / 3;
    return ka * 1000;
  }

  #scheduleRestart(): void {
    this.#clearIdleHold();
    const ms =
      this.timers.idleHoldTime *
      1000 *
      2 ** Math.min(Math.max(this.failures - 1, 0), 5) *
      (0.75 + 0.25 * this.#random());
    this.#idleHold = this.#clock.setTimer(ms, () => {
      this.#idleHold = undefined;
      if (this.#stopped || this.state !== S.Idle) return;
      this.handle(this.passive ? 'AutomaticStartPassive' : 'AutomaticStart');
    });
  }

  #clearIdleHold(): void {
    if (this.#idleHold) this.#clock.clearTimer(this.#idleHold);
    this.#idleHold = undefined;
  }

  #run(a: Action): void {
    const c = this.#clock;
    switch (a) {
      case 'connect':
        // Passive peers only ever accept (BIRD `passive on`, GoBGP passive-mode).
        if (!this.passive) this.#io.connect();
        break;
      case 'drop':
        this.#io.dropConnection();
        break;
      case 'sendOpen':
        this.#io.sendOpen();
        break;
      case 'sendKeepalive':
        this.#io.sendKeepalive();
        break;
      case 'sendErrorNotification':
        if (this.#pending) this.#io.sendNotification(this.#pending);
        break;
      case 'sendHoldExpired':
        this.#setError({
          kind: 'hold-timer-expired',
          message: 'hold timer expired: no KEEPALIVE or UPDATE from the peer within the hold time',
        });
        this.#io.sendNotification({ code: ErrorCode.HoldTimerExpired, subcode: 0 });
        break;
      case 'sendCeaseShutdown':
        this.#io.sendNotification({ code: ErrorCode.Cease, subcode: CeaseSubcode.AdminShutdown });
        break;
      case 'sendCeaseCollision':
        this.lastError = 'connection collision';
        this.lastErrorKind = undefined;
        this.#io.sendNotification({ code: ErrorCode.Cease, subcode: CeaseSubcode.ConnectionCollision });
        break;
      case 'startConnectRetry':
        this.#clear('connectRetry');
        if (this.passive) break;
        this.#connectRetry = c.setTimer(this.connectRetryMs(), () => {
          this.#connectRetry = undefined;
          this.handle('ConnectRetryTimerExpires');
        });
        break;
      case 'stopConnectRetry':
        this.#clear('connectRetry');
        break;
      case 'startHoldLarge':
        this.#setHold(this.timers.openHoldTime);
        break;
      case 'startHoldNegotiated':
      case 'restartHold':
        this.#setHold(this.negotiatedHold);
        break;
      case 'startKeepalive':
        this.#clear('keepalive');
        if (this.negotiatedHold > 0) {
          this.#keepalive = c.setTimer(this.keepaliveMs(), () => {
            this.#keepalive = undefined;
            this.handle('KeepaliveTimerExpires');
          });
        }
        break;
      case 'stopTimers':
        this.#clear('connectRetry');
        this.#clear('hold');
        this.#clear('keepalive');
        break;
      case 'countFailure':
        this.failures++;
        break;
      case 'resetFailures':
        this.failures = 0;
        break;
      case 'established':
        this.lastError = this.lastError ?? undefined;
        break;
    }
  }

  #setError(e: SessionError): void {
    this.lastError = e.message;
    this.lastErrorKind = e.kind;
  }

  #setHold(seconds: number): void {
    this.#clear('hold');
    // RFC 4271 §4.2: a hold time of zero disables the hold and keepalive timers.
    if (seconds <= 0) return;
    this.#hold = this.#clock.setTimer(seconds * 1000, () => {
      this.#hold = undefined;
      this.handle('HoldTimerExpires');
    });
  }

  #clear(which: 'connectRetry' | 'hold' | 'keepalive'): void {
    const key =
      which === 'connectRetry' ? this.#connectRetry : which === 'hold' ? this.#hold : this.#keepalive;
    if (key) this.#clock.clearTimer(key);
    if (which === 'connectRetry') this.#connectRetry = undefined;
    else if (which === 'hold') this.#hold = undefined;
    else this.#keepalive = undefined;
  }
}
