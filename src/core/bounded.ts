/**
 * Settle with what `run()` settles with, or fail with `onTimeout()` after `ms`, whichever comes
 * first. Every failure (a rejection, a synchronous throw, the timeout) goes through `toError` exactly
 * once; a late answer or rejection after the timeout is dropped, never unhandled. One promise and
 * one timer per call: it runs on every store call of every request.
 */
export function bounded<T>(run: () => Promise<T>, ms: number, onTimeout: () => unknown, toError: (err: unknown) => unknown, unref = false): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(toError(err));
    };
    const timer = setTimeout(() => fail(onTimeout()), ms);
    if (unref) timer.unref();
    try {
      run().then((value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      }, fail);
    } catch (err) {
      fail(err);
    }
  });
}
