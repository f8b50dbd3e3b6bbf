export { checkRecordSizes, MAX_RECORD_BYTES } from './frame';
export { nodeIo, spoolDir, type SpoolIo } from './io';
export * from './spool';
export { TurnBatcher, type Waiter } from './turn-batcher';
export {
  messageRecord,
  payloadArray,
  recordMessages,
  splitMessageRecord,
  type OutgoingMessage,
} from './message-record';
