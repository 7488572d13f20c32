/**
 * Rollback protection (TUF client workflow 5.3.5 / 5.4.3 / 5.5.5 / 5.6.5): the highest version of each
 * role this replica has trusted, per Notary server and GUN. In memory only: a restarted replica starts
 * over, as Connaisseur (which keeps no state) always does.
 */
export class VersionMemory {
  private readonly seen = new Map<string, number>();

  /** The highest version trusted so far for the role, or 0. */
  last(scope: string, role: string): number {
    return this.seen.get(`${scope} ${role}`) ?? 0;
  }

  record(scope: string, role: string, version: number): void {
    const key = `${scope} ${role}`;
    if (version > (this.seen.get(key) ?? 0)) this.seen.set(key, version);
  }
}
