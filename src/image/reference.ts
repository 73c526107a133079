/**
 * Docker-style image references, following the distribution reference grammar
 * (github.com/distribution/reference, grammar in its reference.go):
 *
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [ domain "/" ] path-component ( "/" path-component )*
 *   domain     := host [ ":" port ]      host: dns labels separated by ".", or "[ipv6]"
 *   path-comp  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag        := [\w][\w.-]{0,127}
 *   digest     := algorithm ":" hex      (sha256: 64 hex, sha512: 128 hex)
 *
 * Normalization as Docker does it: the first component is a registry only when it contains
 * "." or ":", is "localhost", or has an uppercase letter; otherwise the registry is docker.io,
 * and a single-component docker.io name gets "library/". No tag and no digest means ":latest".
 */
import { PodrunError } from '../util/errors.js';

export interface ImageRef {
  /** "docker.io", "127.0.0.1:5000", "localhost", "[::1]:5000". */
  registry: string;
  /** "library/busybox", "team/app". */
  repository: string;
  tag?: string;
  /** "sha256:<hex>" */
  digest?: string;
  /** Fully normalized: "docker.io/library/busybox:latest", "host/repo@sha256:…", "host/repo:tag@sha256:…". */
  name: string;
  /** The short form a user would type: "busybox:latest", "team/app@sha256:…", "127.0.0.1:5000/x:1". */
  familiar: string;
}

export const DOCKER_HUB = 'docker.io';
const MAX_NAME_LENGTH = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const DOMAIN_LABEL = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6 = /^\[[a-fA-F0-9:.]+(?:%[a-zA-Z0-9]+)?\]$/;
const PORT = /^[0-9]+$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST_ALGORITHMS: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

function invalid(input: string, what: string, hint?: string): PodrunError {
  return new PodrunError('EINVAL_REF', `Cannot parse image reference "${input}": ${what}`, { hint });
}

/** Parse and normalize a reference; throws PodrunError EINVAL_REF saying what is wrong. */
export function parseReference(input: string): ImageRef {
  if (typeof input !== 'string' || input.length === 0) throw invalid(String(input ?? ''), 'it is empty');
  if (input.trim() !== input) throw invalid(input, 'it has leading or trailing whitespace');
  if (/\s/.test(input)) throw invalid(input, 'it contains whitespace');
  if (/^[a-z]+:\/\//i.test(input)) {
    throw invalid(input, 'a reference has no URL scheme', 'Write "host:port/repository:tag" without "http://" or "https://".');
  }

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    checkDigest(input, digest);
  }

  // A tag is after the last ":" that follows the last "/" (a ":" before it is a port).
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.indexOf(':', lastSlash + 1);
  if (colon !== -1) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (tag === '') throw invalid(input, 'the tag after ":" is empty');
    if (!TAG.test(tag)) {
      throw invalid(input, `tag "${tag}" is not valid`, 'A tag is 1-128 characters of letters, digits, "_", "." and "-", not starting with "." or "-".');
    }
  }
  if (rest === '') throw invalid(input, 'the repository name is empty');

  const { registry, path } = splitDomain(input, rest);
  const components = path.split('/');
  for (const c of components) {
    if (c === '') throw invalid(input, 'it has an empty path component ("//" or a trailing "/")');
    if (!PATH_COMPONENT.test(c)) {
      if (c.toLowerCase() !== c && PATH_COMPONENT.test(c.toLowerCase())) {
        throw invalid(input, `repository name must be lowercase ("${c}")`);
      }
      throw invalid(
        input,
        `path component "${c}" is not valid`,
        'Path components use lowercase letters and digits, separated by ".", "_", "__" or "-".',
      );
    }
  }
  const repository = registry === DOCKER_HUB && components.length === 1 ? `library/${path}` : path;
  const full = `${registry}/${repository}`;
  if (full.length > MAX_NAME_LENGTH) {
    throw invalid(input, `the repository name is ${full.length} characters long (at most ${MAX_NAME_LENGTH})`);
  }
  if (tag === undefined && digest === undefined) tag = 'latest';
  return build(registry, repository, tag, digest);
}

function splitDomain(input: string, name: string): { registry: string; path: string } {
  const slash = name.indexOf('/');
  const first = slash === -1 ? '' : name.slice(0, slash);
  const isDomain = slash !== -1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first.toLowerCase() !== first);
  if (!isDomain) return { registry: DOCKER_HUB, path: name };
  checkDomain(input, first);
  let registry = first;
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  return { registry, path: name.slice(slash + 1) };
}

function checkDomain(input: string, domain: string): void {
  let host = domain;
  let port: string | undefined;
  if (domain.startsWith('[')) {
    const end = domain.indexOf(']');
    host = end === -1 ? domain : domain.slice(0, end + 1);
    const after = end === -1 ? '' : domain.slice(end + 1);
    if (after !== '') {
      if (!after.startsWith(':')) throw invalid(input, `registry "${domain}" is not valid`);
      port = after.slice(1);
    }
    if (!IPV6.test(host)) throw invalid(input, `registry "${domain}" is not a valid [IPv6] address`);
  } else {
    const c = domain.indexOf(':');
    if (c !== -1) {
      host = domain.slice(0, c);
      port = domain.slice(c + 1);
    }
    if (host === '') throw invalid(input, `registry "${domain}" has no host name`);
    for (const label of host.split('.')) {
      if (!DOMAIN_LABEL.test(label)) throw invalid(input, `registry host "${host}" is not a valid host name`);
    }
  }
  if (port !== undefined && (!PORT.test(port) || Number(port) < 1 || Number(port) > 65535)) {
    throw invalid(input, `registry port "${port}" is not a number from 1 to 65535`);
  }
}

function checkDigest(input: string, digest: string): void {
  const c = digest.indexOf(':');
  if (c === -1) throw invalid(input, `digest "${digest}" has no algorithm`, 'A digest reads "sha256:" followed by 64 hex characters.');
  const algorithm = digest.slice(0, c);
  const hex = digest.slice(c + 1);
  const len = DIGEST_ALGORITHMS[algorithm];
  if (len === undefined) throw invalid(input, `digest algorithm "${algorithm}" is not supported (sha256, sha384, sha512)`);
  if (!/^[a-f0-9]+$/.test(hex)) throw invalid(input, `digest "${digest}" is not lowercase hex`);
  if (hex.length !== len) throw invalid(input, `digest "${digest}" has ${hex.length} hex characters, ${algorithm} needs ${len}`);
}

function build(registry: string, repository: string, tag: string | undefined, digest: string | undefined): ImageRef {
  const suffix = (tag !== undefined ? `:${tag}` : '') + (digest !== undefined ? `@${digest}` : '');
  let short = `${registry}/${repository}`;
  if (registry === DOCKER_HUB) short = repository.startsWith('library/') && repository.indexOf('/', 8) === -1 ? repository.slice(8) : repository;
  return { registry, repository, tag, digest, name: `${registry}/${repository}${suffix}`, familiar: `${short}${suffix}` };
}

/** The normalized string of a reference ("docker.io/library/busybox:latest"); familiar=true gives the short form. */
export function formatReference(ref: Pick<ImageRef, 'registry' | 'repository' | 'tag' | 'digest'>, opts: { familiar?: boolean } = {}): string {
  const r = build(ref.registry, ref.repository, ref.tag, ref.digest);
  return opts.familiar ? r.familiar : r.name;
}

/** The same repository with another tag or digest (e.g. the digest a tag resolved to). */
export function withDigest(ref: ImageRef, digest: string): ImageRef {
  return build(ref.registry, ref.repository, ref.tag, digest);
}
