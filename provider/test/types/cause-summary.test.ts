import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';

import { ProvenantError } from '../../src/types/errors.ts';

/** A real socket error: a connection to a port nothing listens on (port 1 on loopback). */
function refusedConnection(): Promise<Error> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: 1 });
    socket.on('error', (err) => resolve(err));
  });
}

describe('ProvenantError.causeSummary', () => {
  it('names the socket failure for the operator: code, syscall, address and port', async () => {
    const err = new ProvenantError('REGISTRY_UNREACHABLE', 'registry r could not be connected to', {
      cause: new Error('fetch failed', { cause: await refusedConnection() }),
    });
    expect(err.causeSummary()).toBe('ECONNREFUSED connect 127.0.0.1 1');
    expect(err.message).not.toContain('ECONNREFUSED');
  });

  it('never repeats a cause message, which may quote a response body', () => {
    const secret = 'token-3f9a8b7c';
    const err = new ProvenantError('REGISTRY_TOKEN_FAILED', 'the token server answered no token', {
      cause: Object.assign(new SyntaxError(`Unexpected token, "${secret}" is not valid JSON`), {
        code: 'ERR_BAD_JSON',
      }),
    });
    expect(err.causeSummary()).toBe('ERR_BAD_JSON');
    expect(err.causeSummary()).not.toContain(secret);
  });

  it('has nothing to say without a cause', () => {
    expect(new ProvenantError('REGISTRY_TIMEOUT', 'slow').causeSummary()).toBeUndefined();
  });
});
