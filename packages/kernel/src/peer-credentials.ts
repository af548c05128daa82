/**
 * Who is at the other end of a unix socket: SO_PEERCRED, the credentials the kernel recorded
 * when the peer connected (socket(7)). The pid is as seen from our PID namespace; 0 when the peer
 * lives in a PID namespace we cannot see.
 */
import { errnoName, SyscallError } from './errors.ts';
import { getsockopt, lastErrno, SO_PEERCRED, SOL_SOCKET } from './libc.ts';
import { type SocketTarget, socketFd } from './tcp-socket-options.ts';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

export function peerCredentials(target: SocketTarget): PeerCredentials {
  const ucred = Buffer.alloc(12); // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
  if (getsockopt(socketFd(target), SOL_SOCKET, SO_PEERCRED, ucred, [ucred.length]) !== 0) {
    throw new SyscallError('Socket', 'getsockopt', {
      errno: errnoName(lastErrno()),
      operation: 'reading the credentials of a unix socket peer (SO_PEERCRED)',
    });
  }
  return { pid: ucred.readInt32LE(0), uid: ucred.readUInt32LE(4), gid: ucred.readUInt32LE(8) };
}
