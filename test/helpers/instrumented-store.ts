import type { CompareAndSetResult, SessionStore, StoreCapabilities } from "../../src/index.js";

export type StoreOp = "get" | "create" | "update" | "touch" | "destroy" | "compareAndSet";

/** `throw`: the call rejects at once. `hang`: the call never settles (the manager's `storeTimeout` must end it). */
export type Fault = "throw" | "hang";

const WRITES: ReadonlySet<StoreOp> = new Set(["create", "update", "compareAndSet"]);

/**
 * Wraps any store: counts every call by operation, injects faults per operation, and can slow
 * writes down. It holds no session state of its own; the wrapped store does.
 */
export class InstrumentedStore implements SessionStore {
  readonly name: string;
  readonly capabilities: StoreCapabilities;
  /** Every call, in order; `faulted` ones never reached the wrapped store. */
  readonly calls: { op: StoreOp; id: string; faulted: boolean }[] = [];
  /** Faults by operation; cleared by {@link reset}. */
  readonly faults = new Map<StoreOp, Fault>();
  /** Milliseconds every create/update/compareAndSet waits before it reaches the wrapped store. */
  writeDelayMs = 0;
  readonly compareAndSet?: (id: string, expected: string, record: string, ttl: number) => Promise<CompareAndSetResult>;

  constructor(readonly inner: SessionStore) {
    this.name = `Instrumented${inner.name}`;
    this.capabilities = inner.capabilities;
    const cas = inner.compareAndSet?.bind(inner);
    if (cas !== undefined) {
      this.compareAndSet = (id, expected, record, ttl) => this.#run("compareAndSet", id, () => cas(id, expected, record, ttl));
    }
  }

  count(op?: StoreOp): number {
    return op === undefined ? this.calls.length : this.calls.filter((c) => c.op === op).length;
  }

  /** create + update + compareAndSet calls. */
  writes(): number {
    return this.calls.filter((c) => WRITES.has(c.op)).length;
  }

  #gate: Promise<void> | null = null;
  #arrived: (() => void) | null = null;

  /**
   * Hold every write (create/update/compareAndSet) until `open()` is called. `arrived` resolves when
   * the first held write reaches the store: from then on a test knows the write is pending.
   */
  holdWrites(): { arrived: Promise<void>; open(): void } {
    let open!: () => void;
    this.#gate = new Promise<void>((resolve) => (open = resolve));
    const arrived = new Promise<void>((resolve) => (this.#arrived = resolve));
    return {
      arrived,
      open: () => {
        this.#gate = null;
        open();
      },
    };
  }

  /** Forget the calls, the faults, the delay and any hold. */
  reset(): void {
    this.calls.length = 0;
    this.faults.clear();
    this.writeDelayMs = 0;
    this.#gate = null;
    this.#arrived = null;
  }

  get(id: string, ttl?: number): Promise<string | null> {
    return this.#run("get", id, () => this.inner.get(id, ttl));
  }
  create(id: string, record: string, ttl: number): Promise<boolean> {
    return this.#run("create", id, () => this.inner.create(id, record, ttl));
  }
  update(id: string, record: string, ttl: number): Promise<boolean> {
    return this.#run("update", id, () => this.inner.update(id, record, ttl));
  }
  touch(id: string, ttl: number): Promise<boolean> {
    return this.#run("touch", id, () => this.inner.touch(id, ttl));
  }
  destroy(id: string): Promise<void> {
    return this.#run("destroy", id, () => this.inner.destroy(id));
  }

  async #run<T>(op: StoreOp, id: string, call: () => Promise<T>): Promise<T> {
    const fault = this.faults.get(op);
    this.calls.push({ op, id, faulted: fault !== undefined });
    if (fault === "throw") throw new Error(`injected ${op} failure`);
    if (fault === "hang") return new Promise<T>(() => {});
    if (WRITES.has(op)) {
      if (this.writeDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.writeDelayMs));
      const gate = this.#gate;
      if (gate !== null) {
        this.#arrived?.();
        await gate;
      }
    }
    return call();
  }
}
