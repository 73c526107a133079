/**
 * Registry authentication: WWW-Authenticate challenges (Bearer realm/service/scope, Basic),
 * the token flow (anonymous, with Basic credentials to the realm, or an identity token exchanged
 * by the OAuth2 refresh_token grant), and a process-wide token cache keyed by registry origin +
 * scope + who asked, valid until the token expires.
 *
 * Credentials are looked up lazily: only when the registry answers 401, once per Authenticator.
 */
import { createHash } from 'node:crypto';
import { PodrunError } from '../../util/errors.js';
import type { Credentials } from './credentials.js';
import { header, readBody, type HttpResponse, type Transport } from './http.js';

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

/** The OAuth2 client_id podrun names itself with at token services. */
export const OAUTH_CLIENT_ID = 'podrun';

/** True when the credentials carry only an identity token (no password to send as Basic). */
function identityOnly(c: Credentials): boolean {
  return c.identityToken !== undefined && c.password === '';
}

export class Authenticator {
  /** Undefined until the first 401: then the lookup's answer (which may be "none"). */
  private lookedUp: { credentials: Credentials | undefined } | undefined;

  constructor(
    private readonly transport: Transport,
    /** Host whose credentials apply ("docker.io", "127.0.0.1:5000"), for messages and lookup. */
    private readonly credentialHost: string,
    /** Asked on the first 401 only; Remote shares one per host, so each host is asked once. */
    private readonly lookup: () => Promise<Credentials | undefined>,
  ) {}

  private get credentials(): Credentials | undefined {
    return this.lookedUp?.credentials;
  }

  /** Whether credentials were found (false until a 401 made us look). */
  get hasCredentials(): boolean {
    return this.credentials !== undefined;
  }

  private async loadCredentials(): Promise<Credentials | undefined> {
    if (!this.lookedUp) {
      const credentials = await this.lookup();
      this.lookedUp ??= { credentials };
    }
    return this.lookedUp.credentials;
  }

  /**
   * The Authorization header for a first request to `origin`: when this process has already seen
   * `origin` challenge, credentials are looked up now (saving a 401 round trip); otherwise none is
   * looked up until the origin answers 401.
   */
  async authorization(origin: string, scope: string): Promise<string | undefined> {
    if (challengeCache.has(origin)) await this.loadCredentials();
    return this.cached(origin, scope);
  }

  /** The Authorization header to send to `origin` for `scope`, if one is known without a round trip. */
  cached(origin: string, scope: string): string | undefined {
    const ch = challengeCache.get(origin);
    if (!ch) return undefined;
    if (ch.scheme === 'basic') return this.credentials && !identityOnly(this.credentials) ? basic(this.credentials) : undefined;
    if (ch.scheme === 'bearer') {
      const t = tokenCache.get(this.tokenKey(origin, scope));
      if (t && t.expiresAt > Date.now()) return `Bearer ${t.token}`;
    }
    return undefined;
  }

  /** Tokens are cached per who asked: anonymous, a user name, or (a hash of) an identity token. */
  private tokenKey(origin: string, scope: string): string {
    const c = this.credentials;
    const who = c?.identityToken !== undefined ? `idtoken:${createHash('sha256').update(c.identityToken).digest('hex').slice(0, 16)}` : (c?.username ?? '');
    return `${origin}|${scope}|${who}`;
  }

  /**
   * Answer a 401: parse its challenge, fetch a token (Bearer) or use Basic credentials, and return
   * the Authorization header to retry with. Throws EAUTH when nothing can satisfy the challenge.
   */
  async respond(origin: string, wwwAuthenticate: string | undefined, scope: string, signal?: AbortSignal): Promise<string> {
    await this.loadCredentials();
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
      if (identityOnly(this.credentials)) {
        throw new PodrunError('EAUTH', `Cannot authenticate to "${this.credentialHost}": it requires a user name and password (Basic auth), and its credentials are only an identity token`, {
          hint: `An identity token is exchanged at a Bearer token service; this registry has none. Store a user name and password for "${this.credentialHost}" instead.`,
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
    const creds = this.credentials;
    if (realm.protocol === 'http:' && creds && !this.transport.insecure(realm.host)) {
      throw new PodrunError('EAUTH', `Cannot log in to "${this.credentialHost}": its token service "${realm.origin}" is plain http and would receive the ${creds.identityToken !== undefined ? 'identity token' : 'password'} in clear`, {
        hint: `Mark "${realm.host}" insecure in registries.yaml if this is intended.`,
      });
    }
    const started = Date.now();
    const res = creds?.identityToken !== undefined ? await this.postRefreshToken(realm, ch, scope, creds.identityToken, signal) : await this.getToken(realm, ch, scope, signal);
    // OAuth2 servers answer a bad grant with 400 {"error":"invalid_grant"}; distribution's with 401.
    if (creds?.identityToken !== undefined && res.status === 400) {
      const text = (await readBody(res, 64 * 1024, 'token error').catch(() => Buffer.alloc(0))).toString('utf8');
      const oauthError = /"error"\s*:\s*"([^"]*)"/.exec(text)?.[1];
      throw new PodrunError(
        'EAUTH',
        `Cannot log in to "${this.credentialHost}" with an identity token: the token service "${realm.origin}${realm.pathname}" refused it (HTTP 400${oauthError ? ` ${oauthError}` : ''})`,
        { hint: 'The identity token may have expired or been revoked: log in again (e.g. "docker login").' },
      );
    }
    if (res.status === 401 || res.status === 403) {
      await res.body.dump().catch(() => undefined);
      throw new PodrunError(
        'EAUTH',
        !creds
          ? `Cannot get an anonymous token for "${this.credentialHost}" from "${realm.origin}${realm.pathname}" (HTTP ${res.status})`
          : creds.identityToken !== undefined
            ? `Cannot log in to "${this.credentialHost}" with an identity token: the token service "${realm.origin}${realm.pathname}" refused it (HTTP ${res.status})`
            : `Cannot log in to "${this.credentialHost}" as "${creds.username}": the token service "${realm.origin}${realm.pathname}" refused the credentials (HTTP ${res.status})`,
        {
          hint: !creds
            ? 'This registry needs credentials in the Docker config file.'
            : creds.identityToken !== undefined
              ? 'The identity token may have expired or been revoked: log in again (e.g. "docker login").'
              : 'Check the user name and password in the Docker config file.',
        },
      );
    }
    if (creds?.identityToken !== undefined && res.status === 404) {
      await res.body.dump().catch(() => undefined);
      throw new PodrunError('EAUTH', `Cannot log in to "${this.credentialHost}" with an identity token: the token service "${realm.origin}${realm.pathname}" does not offer OAuth2 (POST answered HTTP 404)`, {
        hint: `Store a user name and password for "${this.credentialHost}" instead of an identity token.`,
      });
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
    // The GET flow answers "token" (and often "access_token" too); OAuth2 answers "access_token".
    const token =
      creds?.identityToken !== undefined
        ? typeof doc.access_token === 'string' ? doc.access_token : undefined
        : typeof doc.token === 'string' ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : undefined;
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

  /** The token flow of the distribution token spec: GET realm?service=&scope=, anonymous or with Basic. */
  private getToken(realm: URL, ch: Challenge, scope: string, signal?: AbortSignal): Promise<HttpResponse> {
    const url = new URL(realm);
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    for (const s of scope.split(' ').filter(Boolean)) url.searchParams.append('scope', s);
    const c = this.credentials;
    return this.transport.send(
      { method: 'GET', url, headers: { accept: 'application/json' }, authorization: c && !identityOnly(c) ? basic(c) : undefined, signal },
      'fetch registry token from',
    );
  }

  /**
   * The OAuth2 flow of the distribution token spec: POST realm, form grant_type=refresh_token,
   * refresh_token, service, scope (space-separated), client_id. Not redirected (the body holds a secret).
   */
  private postRefreshToken(realm: URL, ch: Challenge, scope: string, refreshToken: string, signal?: AbortSignal): Promise<HttpResponse> {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: OAUTH_CLIENT_ID });
    if (ch.params.service) form.set('service', ch.params.service);
    if (scope.trim()) form.set('scope', scope.trim());
    return this.transport.send(
      {
        method: 'POST',
        url: realm,
        headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
        body: Buffer.from(form.toString()),
        followRedirects: false,
        signal,
      },
      'fetch registry token from',
    );
  }
}
