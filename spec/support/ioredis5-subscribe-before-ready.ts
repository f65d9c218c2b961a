/**
 * The errors ioredis 5 rejects a subscriber connection's queued commands with when the application's SUBSCRIBE (or
 * UNSUBSCRIBE) was written during the connection's handshake, before its ready check: the ready check's INFO is then
 * refused, by ioredis 5 itself or by the server (see spec/cluster/subscriber-reconnect-race.test.ts).
 */
export const IOREDIS5_SUBSCRIBE_BEFORE_READY =
  /^(Connection in subscriber mode, only subscriber commands may be used|ERR Can't execute 'info': .*)$/;
