/**
 * Alerting in Connaisseur's `alerting:` shape, migrated from Connaisseur's own alerting suite, sent to a
 * real HTTP receiver on loopback that records every payload and checks it against the receiving
 * service's format (Slack Block Kit, Teams MessageCard, Opsgenie alerts).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../../provider/src/config/index.ts';
import { migrateConnaisseur, type KubeObject, type Values } from '../../../provider/src/migrate/index.ts';
import { Runtime } from '../../../provider/src/service/index.ts';
import { pushRandomImage, type PushedManifest } from '../../harness/images.ts';
import { waitFor } from '../../harness/kube.ts';
import { PROJECT_ROOT } from '../../harness/provenant.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

/** A synchronous check for waitFor. */
const now =
  <T>(check: () => T | undefined): (() => Promise<T | undefined>) =>
  () =>
    Promise.resolve(check());

const FIXTURES = path.resolve(PROJECT_ROOT, '../shared/fixtures/connaisseur');

interface Received {
  readonly path: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Record<string, unknown>;
}

/** A loopback webhook receiver: records JSON bodies; paths listed in `failing` answer 500. */
async function startReceiver(): Promise<{
  server: Server;
  port: number;
  received: Received[];
  failing: Set<string>;
}> {
  const received: Received[] = [];
  const failing = new Set<string>();
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        headers: req.headers,
        body: JSON.parse(data) as Record<string, unknown>,
      });
      res.statusCode = failing.has(req.url ?? '') ? 500 : 200;
      res.end('ok');
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { server, port: (server.address() as AddressInfo).port, received, failing };
}

/** Slack Block Kit limits (api.slack.com/reference/block-kit/blocks) for the blocks the template uses. */
function expectValidSlackMessage(body: Record<string, unknown>): void {
  expect(typeof body['text']).toBe('string');
  const blocks = body['blocks'] as {
    type: string;
    text?: { type: string; text: string };
    fields?: { type: string; text: string }[];
    elements?: { type: string; text: string }[];
  }[];
  expect(blocks.length).toBeGreaterThan(0);
  expect(blocks.length).toBeLessThanOrEqual(50);
  for (const block of blocks) {
    expect(['header', 'section', 'context', 'divider']).toContain(block.type);
    if (block.type === 'header') {
      expect(block.text?.type).toBe('plain_text');
      expect(block.text?.text.length).toBeGreaterThan(0);
      expect(block.text?.text.length).toBeLessThanOrEqual(150);
    }
    if (block.type === 'section') {
      expect(block.text !== undefined || block.fields !== undefined).toBe(true);
      if (block.text) expect(block.text.text.length).toBeLessThanOrEqual(3000);
      expect(block.fields?.length ?? 0).toBeLessThanOrEqual(10);
      for (const f of block.fields ?? []) {
        expect(['mrkdwn', 'plain_text']).toContain(f.type);
        expect(f.text.length).toBeLessThanOrEqual(2000);
      }
    }
    if (block.type === 'context') {
      expect(block.elements?.length).toBeGreaterThan(0);
      expect(block.elements?.length).toBeLessThanOrEqual(10);
    }
  }
}

/** Teams' legacy MessageCard (learn.microsoft.com, "Legacy actionable message card reference"). */
function expectValidMessageCard(body: Record<string, unknown>): void {
  expect(body['@type']).toBe('MessageCard');
  expect(body['@context']).toBe('https://schema.org/extensions');
  expect(typeof body['summary'] === 'string' && body['summary'].length > 0).toBe(true);
  for (const section of body['sections'] as { facts: { name: unknown; value: unknown }[] }[]) {
    for (const fact of section.facts) {
      expect(typeof fact.name).toBe('string');
      expect(typeof fact.value).toBe('string');
    }
  }
}

describe('alerting', () => {
  let registry: RegistryServer;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let trusted: PushedManifest;
  const warnings: string[] = [];
  const runtimes: Runtime[] = [];

  /** The Connaisseur alerting suite's values, migrated, pointed at this receiver and registry. */
  function migratedConfig(extra: (alerting: Values) => void = () => undefined): Config {
    const text = readFileSync(path.join(FIXTURES, 'install', 'alerting.yaml'), 'utf8')
      .replaceAll('${ALERTING_ENDPOINT_IP}', '127.0.0.1')
      .replaceAll(':56243/', `:${receiver.port}/`);
    const shipped = (f: string): KubeObject[] =>
      parseAllDocuments(readFileSync(path.join(PROJECT_ROOT, 'gatekeeper', f), 'utf8')).map(
        (d) => d.toJS() as KubeObject,
      );
    const m = migrateConnaisseur([parse(text) as Values], {
      constraint: shipped('constraints/verified-images.yaml')[0] as KubeObject,
      podMutators: [],
      workloadMutators: [],
    });
    const config = m.config as {
      validators: unknown;
      policy: unknown;
      registries?: unknown;
      alerting: Values;
    };
    config.validators = [
      { name: 'allow', type: 'static', approve: true },
      { name: 'deny', type: 'static', approve: false },
    ];
    config.policy = [
      { pattern: '*:*', validator: 'deny' },
      { pattern: `${registry.host}/trusted/*`, validator: 'allow' },
    ];
    config.registries = [{ host: registry.host, insecure: true }];
    extra(config.alerting);
    return parseConfig(stringify(config), 'alerting test', PROJECT_ROOT);
  }

  function runtime(config: Config): Runtime {
    const r = new Runtime(config, 'alerting test', { sendAlerts: true, warn: (m) => warnings.push(m) });
    runtimes.push(r);
    return r;
  }

  const on = (p: string): Received[] => receiver.received.filter((r) => r.path === p);

  beforeAll(async () => {
    registry = await startDistributionRegistry();
    receiver = await startReceiver();
    trusted = await pushRandomImage(registry.url, 'trusted/app', 'v1');
  });

  afterAll(async () => {
    await Promise.all(runtimes.map((r) => r.close()));
    receiver?.server.close();
    await registry?.stop();
  });

  it("sends Connaisseur's admit receivers a valid Opsgenie alert and Slack message for an admitted image, once per verdict", async () => {
    const r = runtime(migratedConfig());
    const [outcome] = await r.verifier.verifyAll([trusted.reference]);
    expect(outcome?.ok).toBe(true);
    // Opsgenie has failIfAlertSendingFails: it was sent before the answer.
    const [opsgenie] = on('/opsgenie');
    expect(opsgenie?.headers['authorization']).toBe('GenieKey <Your-Genie-Key>');
    expect(opsgenie?.body).toMatchObject({
      message: 'Provenant admitted an image',
      priority: 'P4',
      entity: 'Provenant',
      responders: [{ username: 'testuser@testcompany.de', type: 'user' }],
      visibleTo: [{ username: 'testuser@testcompany.de', type: 'user' }],
      tags: ['deployed_an_image'],
      details: { cluster: 'integration-test-cluster', image: trusted.reference, digest: trusted.digest },
    });
    expect((opsgenie?.body['message'] as string).length).toBeLessThanOrEqual(130);
    const slack = await waitFor(
      'the Slack alert',
      10_000,
      now(() => on('/slack')[0]),
    );
    expectValidSlackMessage(slack.body);
    expect(JSON.stringify(slack.body)).toContain(trusted.reference);

    // The cached verdict answers again without alerting again.
    const before = receiver.received.length;
    await r.verifier.verifyAll([trusted.reference]);
    expect(receiver.received.length).toBe(before);
  });

  it('sends the reject receivers the denial with its reason', async () => {
    const r = runtime(migratedConfig());
    const image = `${registry.host}/other/app:v1`;
    const [outcome] = await r.verifier.verifyAll([image]);
    expect(outcome?.ok).toBe(false);
    const keybase = on('/keybase').find((k) => JSON.stringify(k.body).includes(image));
    expect(keybase?.body['msg']).toMatch(
      /^Provenant rejected an image: .*other\/app:v1 in cluster integration-test-cluster .*POLICY_STATIC_DENY/,
    );
    const slack = await waitFor(
      'the Slack rejection',
      10_000,
      now(() => on('/slack').find((s) => JSON.stringify(s.body).includes('POLICY_STATIC_DENY'))),
    );
    expectValidSlackMessage(slack.body);
  });

  it('sends Teams a valid MessageCard', async () => {
    const r = runtime(
      migratedConfig((alerting) => {
        alerting['rejectRequest'] = {
          receivers: [{ template: 'msteams', receiverUrl: `http://127.0.0.1:${receiver.port}/teams` }],
        };
      }),
    );
    await r.verifier.verifyAll([`${registry.host}/teams/app:v1`]);
    const card = await waitFor(
      'the Teams card',
      10_000,
      now(() => on('/teams')[0]),
    );
    expectValidMessageCard(card.body);
    expect(JSON.stringify(card.body)).toContain('teams/app:v1');
  });

  it('turns a failed mandatory alert into a transient ALERT_SEND_FAILED after retries, and does not cache the verdict', async () => {
    receiver.failing.add('/keybase');
    try {
      const r = runtime(migratedConfig((alerting) => (alerting['maxRetries'] = 1)));
      const image = `${registry.host}/failing/app:v1`;
      const before = on('/keybase').length;
      const [outcome] = await r.verifier.verifyAll([image]);
      expect(outcome?.ok).toBe(false);
      if (outcome?.ok !== false) return;
      expect(outcome.error.code).toBe('ALERT_SEND_FAILED');
      expect(outcome.error.transient).toBe(true);
      expect(outcome.error.message).toBe(
        `alert to receiver rejectRequest[0] (keybase) at http://127.0.0.1:${receiver.port} failed: not delivered (HTTP 500)`,
      );
      expect(on('/keybase').length - before).toBe(2);
      // Not cached: the next request verifies and alerts again.
      await r.verifier.verifyAll([image]);
      expect(on('/keybase').length - before).toBe(4);
    } finally {
      receiver.failing.delete('/keybase');
    }
  });

  it('drops alerts beyond maxAlertsPerMinute per receiver, and never logs header values or receiver paths', async () => {
    receiver.failing.add('/slack-limited');
    const r = runtime(
      migratedConfig((alerting) => {
        alerting['maxAlertsPerMinute'] = 2;
        alerting['maxRetries'] = 0;
        alerting['rejectRequest'] = {
          receivers: [
            {
              template: 'slack',
              receiverUrl: `http://127.0.0.1:${receiver.port}/slack-limited`,
              customHeaders: ['X-Api-Key: very-secret-key'],
            },
          ],
        };
      }),
    );
    await r.verifier.verifyAll(['a', 'b', 'c'].map((n) => `${registry.host}/limited/${n}:v1`));
    await waitFor(
      'two alerts',
      10_000,
      now(() => (on('/slack-limited').length === 2 ? true : undefined)),
    );
    await waitFor(
      'the third to be dropped',
      10_000,
      now(() => (warnings.some((w) => w.includes('rate limit reached')) ? true : undefined)),
    );
    expect(on('/slack-limited')[0]?.headers['x-api-key']).toBe('very-secret-key');
    expect(on('/slack-limited')).toHaveLength(2);
    const logged = warnings.join('\n');
    expect(logged).toContain(`rejectRequest[0] (slack) at http://127.0.0.1:${receiver.port}`);
    expect(logged).not.toContain('very-secret-key');
    expect(logged).not.toContain('/slack-limited');
    receiver.failing.delete('/slack-limited');
  });
});
