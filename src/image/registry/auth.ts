/**
 * Registry authentication: WWW-Authenticate challenges (Bearer realm/service/scope, Basic),
 * the token flow (anonymous or with Basic credentials to the realm), and a process-wide token
 * cache keyed by registry origin + scope, valid until the token expires.
 */
import { PodrunError } from '../../util/errors.js';
import type { Credentials } from './credentials.js';
import { header, readBody, type Transport } from './http.js';

export interface Challenge {
  scheme: string; // "bearer", "basic" (lowercased)
  params: Record<string, string>;
}

/** Parse a WWW-Authenticate header value (one or more challenges, quoted-string params). */
export function parseChallenges(value: string | undefined): Challenge[] {
  if (!value) return [];
  const out: Challenge[] = [];
  let i = 0;
  const s = value;
  const skipWs = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
  };
  while (i < s.length) {
    skipWs();
    const m = /^[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*/.exec(s.slice(i));
    if (!m) break;
    const scheme = m[0].toLowerCase();
    i += m[0].length;
    const params: Record<string, string> = {};
    for (;;) {
      while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
      const pm = /^([A-Za-z0-9_.-]+)\s*=\s*/.exec(s.slice(i));
      if (!pm) break;
      // A new scheme looks like "Word " not "word=", so a param is "name=".
      i += pm[0].length;
      let v = '';
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          v += s[i++];
        }
        i++;
      } else {
        const vm = /^[^,\s]*/.exec(s.slice(i))!;
        v = vm[0];
        i += v.length;
      }
      params[pm[1].toLowerCase()] = v;
      while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
      if (s[i] === ',') i++;
      else break;
    }
    out.push({ scheme, params });
  }
  return out;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

const tokenCache = new Map<string, CachedToken>();
const challengeCache = new Map<string, Challenge>();

/** Forget cached tokens and challenges (tests). */
export function clearAuthCache(): void {
  tokenCache.clear();
  challengeCache.clear();
}

function basic(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

export class Authenticator {
  constructor(
    private readonly transport: Transport,
    /** Host whose credentials apply ("docker.io", "127.0.0.1:5000"), for messages and lookup. */
    private readonly credentialHost: string,
    private readonly credentials: Credentials | undefined,
  ) {}

  get hasCredentials(): boolean {
    return this.credentials !== undefined;
  }

  /** The Authorization header to send to `origin` for `scope`, if one is known without a round trip. */
  cached(origin: string, scope: string): string | undefined {
    const ch = challengeCache.get(origin);
    if (!ch) return undefined;
    if (ch.scheme === 'basic') return this.credentials ? basic(this.credentials) : undefined;
    if (ch.scheme === 'bearer') {
      const t = tokenCache.get(this.tokenKey(origin, scope));
      if (t && t.expiresAt > Date.now()) return `Bearer ${t.token}`;
    }
    return undefined;
  }

  private tokenKey(origin: string, scope: string): string {
    return `${origin}|${scope}|${this.credentials?.username ?? ''}`;
  }

  /**
   * Answer a 401: parse its challenge, fetch a token (Bearer) or use Basic credentials, and return
   * the Authorization header to retry with. Throws EAUTH when nothing can satisfy the challenge.
   */
  async respond(origin: string, wwwAuthenticate: string | undefined, scope: string, signal?: AbortSignal): Promise<string> {
    const challenges = parseChallenges(wwwAuthenticate);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basicCh = challenges.find((c) => c.scheme === 'basic');
    if (bearer && bearer.params.realm) {
      challengeCache.set(origin, bearer);
      const token = await this.fetchToken(bearer, scope, signal);
      tokenCache.set(this.tokenKey(origin, scope), token);
      return `Bearer ${token.token}`;
    }
    if (basicCh) {
      challengeCache.set(origin, basicCh);
      if (!this.credentials) {
        throw new PodrunError('EAUTH', `Cannot authenticate to "${this.credentialHost}": it requires a user name and password`, {
          hint: `Add credentials for "${this.credentialHost}" to the Docker config file ($DOCKER_CONFIG/config.json or ~/.docker/config.json), e.g. with "podman login".`,
        });
      }
      return basic(this.credentials);
    }
    throw new PodrunError('EAUTH', `Cannot authenticate to "${this.credentialHost}": unsupported challenge "${wwwAuthenticate ?? '(none)'}"`);
  }

  /** Drop what is cached for this origin+scope (after a 401 despite a cached token). */
  invalidate(origin: string, scope: string): void {
    tokenCache.delete(this.tokenKey(origin, scope));
  }

  private async fetchToken(ch: Challenge, scope: string, signal?: AbortSignal): Promise<CachedToken> {
    let realm: URL;
    try {
      realm = new URL(ch.params.realm);
    } catch {
      throw new PodrunError('EAUTH', `Cannot authenticate to "${this.credentialHost}": token realm "${ch.params.realm}" is not a URL`);
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') {
      throw new PodrunError('EAUTH', `Cannot authenticate to "${this.credentialHost}": token realm "${realm.href}" is not an http(s) URL`);
    }
    if (realm.protocol === 'http:' && this.credentials && !this.transport.insecure(realm.host)) {
      throw new PodrunError('EAUTH', `Cannot log in to "${this.credentialHost}": its token service "${realm.origin}" is plain http and would receive the password in clear`, {
        hint: `Mark "${realm.host}" insecure in registries.yaml if this is intended.`,
      });
    }
    if (ch.params.service) realm.searchParams.set('service', ch.params.service);
    for (const s of scope.split(' ').filter(Boolean)) realm.searchParams.append('scope', s);
    const started = Date.now();
    const res = await this.transport.send(
      {
        method: 'GET',
        url: realm,
        headers: { accept: 'application/json' },
        authorization: this.credentials ? basic(this.credentials) : undefined,
        signal,
      },
      'fetch registry token from',
    );
    if (res.status === 401 || res.status === 403) {
      await res.body.dump().catch(() => undefined);
      throw new PodrunError(
        'EAUTH',
        this.credentials
          ? `Cannot log in to "${this.credentialHost}" as "${this.credentials.username}": the token service "${realm.origin}${realm.pathname}" refused the credentials (HTTP ${res.status})`
          : `Cannot get an anonymous token for "${this.credentialHost}" from "${realm.origin}${realm.pathname}" (HTTP ${res.status})`,
        { hint: this.credentials ? 'Check the user name and password in the Docker config file.' : 'This registry needs credentials in the Docker config file.' },
      );
    }
    if (res.status !== 200) {
      const text = (await readBody(res, 64 * 1024, 'token error').catch(() => Buffer.alloc(0))).toString('utf8').slice(0, 200);
      throw new PodrunError('EAUTH', `Cannot get a token for "${this.credentialHost}" from "${realm.origin}${realm.pathname}": HTTP ${res.status} ${text}`);
    }
    const bytes = await readBody(res, 1024 * 1024, 'registry token');
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      doc = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new PodrunError('EAUTH', `Cannot get a token for "${this.credentialHost}": the token service "${realm.origin}" answered with invalid JSON (${header(res, 'content-type') ?? 'no content type'})`);
    }
    const token = typeof doc.token === 'string' ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : undefined;
    if (!token) throw new PodrunError('EAUTH', `Cannot get a token for "${this.credentialHost}": the token service "${realm.origin}" returned no token`);
    const expiresIn = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    let issued = started;
    if (typeof doc.issued_at === 'string') {
      const t = Date.parse(doc.issued_at);
      if (Number.isFinite(t) && Math.abs(t - started) < 300_000) issued = t;
    }
    // Renew a little early so a token does not expire in flight.
    return { token, expiresAt: issued + expiresIn * 1000 - Math.min(10_000, (expiresIn * 1000) / 10) };
  }
}
