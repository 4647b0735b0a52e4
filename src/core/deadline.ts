import { HearthError } from './errors.js';

/**
 * Runs `fn` with a deadline. The signal it receives aborts at the deadline or when `parent`
 * aborts, so the device call closes its socket; the promise rejects with
 * HEARTH_ERR_DEVICE_TIMEOUT at the deadline even if `fn` ignores the signal.
 */
export async function withDeadline<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  ms: number,
  what: string,
  parent?: AbortSignal,
  /** The whole deadline, for the message, when `ms` is what is left of it. */
  totalMs = ms,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const onParentAbort = () => controller.abort(parent?.reason);
  parent?.addEventListener('abort', onParentAbort, { once: true });
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new HearthError('HEARTH_ERR_DEVICE_TIMEOUT', `${what} did not answer within ${totalMs} ms`);
      controller.abort(err);
      reject(err);
    }, ms);
  });
  try {
    return await Promise.race([fn(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
    parent?.removeEventListener('abort', onParentAbort);
  }
}
