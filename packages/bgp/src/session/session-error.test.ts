import { describe, expect, it } from 'vitest';
import {
  connectTimeout,
  laterError,
  notificationText,
  receivedNotification,
  sentNotification,
  shutdownCommunication,
  socketFailure,
} from './session-error.ts';

const attempt = { peer: '192.0.2.9', port: 179, localAddress: '198.51.100.7', password: false };

describe('session errors', () => {
  it('decodes NOTIFICATION codes to their RFC names, keeping unknown numbers', () => {
    expect(notificationText(2, 2)).toBe('OPEN Message Error / Bad Peer AS');
    expect(notificationText(6, 2)).toBe('Cease / Administrative Shutdown');
    expect(notificationText(6, 5)).toBe('Cease / Connection Rejected');
    expect(notificationText(4, 0)).toBe('Hold Timer Expired');
    expect(notificationText(6, 42)).toBe('Cease / subcode 42');
    expect(notificationText(9, 1)).toBe('error code 9 / subcode 1');
  });

  it('calls a received Bad Peer AS an AS mismatch and Cease 2/4 an administrative shutdown', () => {
    expect(receivedNotification(2, 2, new Uint8Array()).kind).toBe('as-mismatch');
    const msg = new TextEncoder().encode('maintenance');
    const shut = receivedNotification(6, 2, Uint8Array.of(msg.length, ...msg));
    expect(shut).toEqual({
      kind: 'admin-shutdown',
      message:
        'peer administratively shut down the session (NOTIFICATION Cease / Administrative Shutdown: "maintenance")',
    });
    expect(receivedNotification(6, 4, new Uint8Array()).kind).toBe('admin-shutdown');
    expect(receivedNotification(6, 5, new Uint8Array()).kind).toBe('notification-received');
    expect(receivedNotification(6, 3, new Uint8Array())).toEqual({
      kind: 'admin-shutdown',
      message: 'peer removed the session from its configuration (NOTIFICATION Cease / Peer De-configured)',
    });
    expect(sentNotification(2, 2, 'AS 65001, configured 65002').message).toBe(
      'AS mismatch: AS 65001, configured 65002 (sent NOTIFICATION OPEN Message Error / Bad Peer AS)',
    );
  });

  it('reads an RFC 9003 shutdown communication only when its length fits', () => {
    expect(shutdownCommunication(Uint8Array.of(2, 0x68, 0x69))).toBe('hi');
    expect(shutdownCommunication(Uint8Array.of(5, 0x68))).toBeUndefined();
    expect(shutdownCommunication(new Uint8Array())).toBeUndefined();
  });

  it('tells refused, timed-out and unbindable connections apart by errno', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 192.0.2.9:179'), { code: 'ECONNREFUSED' });
    expect(socketFailure(refused, attempt)).toEqual({
      kind: 'connection-refused',
      message: 'connection refused: nothing listens on 192.0.2.9:179 (ECONNREFUSED)',
    });
    const kernel = Object.assign(new Error('EADDRNOTAVAIL connect'), { errno: 'EADDRNOTAVAIL' });
    expect(socketFailure(kernel, attempt).message).toBe(
      'source address 198.51.100.7 is not an address of this host (EADDRNOTAVAIL)',
    );
    expect(socketFailure(new Error('ETIMEDOUT connect'), attempt).kind).toBe('connect-timeout');
    expect(socketFailure(new Error('something else'), attempt)).toEqual({
      kind: 'socket-error',
      message: 'socket: something else',
    });
    expect(connectTimeout({ ...attempt, password: true }).message).toMatch(/check the password/);
    expect(connectTimeout(attempt).message).not.toMatch(/check the password/);
  });

  it('keeps a shutdown or AS mismatch as the cause of the closes and rejections that follow', () => {
    const shut = receivedNotification(6, 2, new Uint8Array());
    const closed = { kind: 'connection-closed' as const, message: 'connection closed' };
    const once = laterError(shut, closed);
    expect(once.kind).toBe('admin-shutdown');
    expect(once.message).toBe(`${shut.message}; since then: connection closed`);
    expect(laterError(once, receivedNotification(6, 5, new Uint8Array())).message).toBe(
      `${shut.message}; since then: received NOTIFICATION Cease / Connection Rejected`,
    );
    expect(laterError(shut, { kind: 'socket-error', message: 'socket: read ECONNRESET' }).kind).toBe(
      'admin-shutdown',
    );
    expect(laterError(shut, receivedNotification(2, 2, new Uint8Array())).kind).toBe('as-mismatch');
    expect(laterError(undefined, closed)).toBe(closed);
    expect(laterError({ kind: 'connect-timeout', message: 't' }, closed)).toBe(closed);
  });
});
