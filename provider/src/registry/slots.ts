/**
 * Bounds on simultaneous registry requests, per registry host and overall. One admission review may
 * name a thousand images; without a bound each opens its own connection to the same registry (999 at
 * once were observed), which a registry answers with 429s or resets, and which pins file descriptors.
 * Requests over a bound wait in FIFO order; the wait counts against the caller's deadline (its signal).
 */
export interface SlotLimits {
  readonly maxConcurrentRequests: number;
  readonly maxConcurrentRequestsPerRegistry: number;
}

interface Waiter {
  readonly host: string;
  readonly grant: () => void;
}

export class RequestSlots {
  private active = 0;
  private readonly activePerHost = new Map<string, number>();
  private waiting: Waiter[] = [];

  constructor(private readonly limits: SlotLimits) {}

  /** Resolves with a release function once a slot for `host` is free; rejects with the signal's reason on abort. */
  acquire(host: string, signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    if (this.free(host)) return Promise.resolve(this.take(host));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.waiting = this.waiting.filter((w) => w !== waiter);
        reject(signal.reason as Error);
      };
      const waiter: Waiter = {
        host,
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve(this.take(host));
        },
      };
      this.waiting.push(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Requests in flight and waiting (for tests and metrics). */
  get counts(): { readonly active: number; readonly waiting: number } {
    return { active: this.active, waiting: this.waiting.length };
  }

  private free(host: string): boolean {
    return (
      this.active < this.limits.maxConcurrentRequests &&
      (this.activePerHost.get(host) ?? 0) < this.limits.maxConcurrentRequestsPerRegistry
    );
  }

  private take(host: string): () => void {
    this.active++;
    this.activePerHost.set(host, (this.activePerHost.get(host) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      const left = (this.activePerHost.get(host) ?? 1) - 1;
      if (left === 0) this.activePerHost.delete(host);
      else this.activePerHost.set(host, left);
      this.wakeNext();
    };
  }

  /** Grants the first waiter (in arrival order) whose host has room. */
  private wakeNext(): void {
    const index = this.waiting.findIndex((w) => this.free(w.host));
    if (index < 0) return;
    const [waiter] = this.waiting.splice(index, 1);
    waiter?.grant();
  }
}
