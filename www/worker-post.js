// What every part of the model Worker posts to the page: one helper per message kind the parts
// share (the messages themselves: protocol.js).

import { FromWorker } from './protocol.js';

export const post = (msg) => self.postMessage(msg);
// a line for the page's status (what the Worker is doing now)
export const status = (text) => post({ type: FromWorker.STATUS, text });
// a model file's bytes so far (the model panel's progress bars)
export const progress = (file, loaded, total, extra = {}) => post({ type: FromWorker.PROGRESS, file, loaded, total, ...extra });
