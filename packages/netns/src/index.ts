export {
  AddonNotBuiltError,
  InvalidArgumentError,
  MissingCapabilityError,
  NetnsErrorCode,
  SocketClosedError,
  SyscallError,
  UnsupportedPlatformError,
} from './errors.ts';
export { ADDON_PATH, loadBinding } from './native.ts';
export type { SocketAddress } from './native.ts';
export {
  closeFd,
  currentNetnsInode,
  isNetnsFd,
  netnsInode,
  netnsPathOfPid,
  openNetns,
} from './netns-handle.ts';
export { trimNativeHeap } from './native-heap.ts';
export { connectInNetns, createTcpListener, createUdpSocket, listenInNetns } from './netns-sockets.ts';
export type {
  ConnectOptions,
  ListenOptions,
  NetnsFd,
  TcpListenerOptions,
  UdpSocketOptions,
} from './netns-sockets.ts';
export {
  familyOf,
  getLocalAddress,
  getMark,
  getOriginalDst,
  isTransparent,
  setMark,
  socketFd,
} from './socket-options.ts';
export type { FdSource, IpFamily, SocketOptions } from './socket-options.ts';
export { SeqpacketServer, SeqpacketSocket } from './seqpacket.ts';
export type { SeqpacketMessage, SeqpacketServerOptions, SeqpacketSocketOptions } from './seqpacket.ts';
export { Capability, translateError } from './syscall-errors.ts';
