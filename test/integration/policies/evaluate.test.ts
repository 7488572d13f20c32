/** The ConstraintTemplate compiled to WASM by the real opa, evaluated with a recording resolver. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CompiledTemplate,
  HTTP_OK,
  readTemplate,
  type ExternalDataRequest,
  type ExternalDataResponse,
} from '../../../provider/src/policy/rego/index.ts';
import { PROJECT_ROOT } from '../../harness/provenant.ts';
import { toolPath } from '../../harness/tools.ts';

const TEMPLATE = 'gatekeeper/templates/provenantverifiedimages.yaml';

function review(spec: object): object {
  return {
    review: { object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec } },
    parameters: {},
  };
}

describe('CompiledTemplate', () => {
  let template: CompiledTemplate;

  beforeAll(async () => {
    process.env.PROVENANT_OPA = toolPath('opa');
    const text = await readFile(path.join(PROJECT_ROOT, TEMPLATE), 'utf8');
    template = await CompiledTemplate.compile(readTemplate(text, TEMPLATE));
  });

  it('asks external_data once, for the distinct images of every container kind, sorted', async () => {
    const asked: ExternalDataRequest[] = [];
    const resolve = (r: ExternalDataRequest): Promise<ExternalDataResponse> => {
      asked.push(r);
      return Promise.resolve({
        responses: [],
        errors: r.keys.map((k): [string, string] => [k, `POLICY_STATIC_DENY: no ${k}`]),
        system_error: '',
        status_code: HTTP_OK,
      });
    };
    const violations = await template.violations(
      review({
        containers: [
          { name: 'a', image: 'z/app:1' },
          { name: 'b', image: 'a/side:1' },
        ],
        initContainers: [{ name: 'i', image: 'z/app:1' }],
      }),
      resolve,
    );
    expect(asked).toEqual([{ provider: 'provenant', keys: ['a/side:1', 'z/app:1'] }]);
    expect(violations.map((v) => v.msg).sort()).toEqual([
      'containers "a" has an untrusted image "z/app:1": POLICY_STATIC_DENY: no z/app:1',
      'containers "b" has an untrusted image "a/side:1": POLICY_STATIC_DENY: no a/side:1',
      'initContainers "i" has an untrusted image "z/app:1": POLICY_STATIC_DENY: no z/app:1',
    ]);
  });

  it('does not call external_data for an object without images', async () => {
    let calls = 0;
    const resolve = (): Promise<ExternalDataResponse> => {
      calls++;
      return Promise.reject(new Error('not expected'));
    };
    expect(await template.violations(review({ containers: [] }), resolve)).toEqual([]);
    expect(calls).toBe(0);
  });
});
