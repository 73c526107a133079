/**
 * YAML text → ManifestSet (pods as PodPlan, ConfigMaps, Secrets, warnings).
 *
 * Three passes, every problem collected before anything is thrown:
 *  1. YAML syntax, per document (line/column from the `yaml` package);
 *  2. structure and leaf values, per document (zod schemas in schema.ts);
 *  3. cross-field rules and defaults (this file): references, uniqueness, ports, probes, hooks,
 *     resources, then ConfigMap/Secret volume contents resolved from the same set.
 * Any problem → one SpecError (code EINVAL_SPEC) listing all of them with file, line and field path.
 */
import { createHash, randomUUID } from 'node:crypto';
import { LineCounter, parseAllDocuments, type Document, type EmptyStream } from 'yaml';
import type { z } from 'zod';
import { PodrunError } from '../util/errors.js';
import { normalizeCapability } from './capabilities.js';
import { metadataFieldValue, resolveFiles, type PodMetadataFacts } from './objects.js';
import { checkQualifiedName, checkSysctl } from './names.js';
import type {
  ConfigMapPlan,
  ContainerPlan,
  ContainerPortPlan,
  DownwardApiItem,
  EnvFromPlan,
  EnvVarPlan,
  FieldPath,
  HttpGetAction,
  LifecycleHandler,
  ManifestSet,
  PodPlan,
  ProbeHandler,
  ProbePlan,
  ProjectedFile,
  PullPolicy,
  ResourceFieldRef,
  ResourcesPlan,
  SecretPlan,
  SpecProblem,
  SpecWarning,
  VolumePlan,
} from './plan.js';
import { formatQuantity, isFractional, parseQuantity, quantityMilli, quantityValue, QuantityError } from './quantity.js';
import {
  IGNORED,
  isEmptyValue,
  schemas,
  type ConfigMapInput,
  type ContainerInput,
  type HttpGetInput,
  type LifecycleHandlerInput,
  type MetadataInput,
  type PodInput,
  type ProbeInput,
  type ResourceFieldRefInput,
  type SecretInput,
  type VolumeInput,
} from './schema.js';

export interface ParseOptions {
  /** File name (or other label) used in messages and kept in the plans. */
  source?: string;
  /** uid for pods without metadata.uid; default crypto.randomUUID. */
  generateUid?: () => string;
}

/** The one error parseManifests throws: every problem found, each with its field path. */
export class SpecError extends PodrunError {
  readonly problems: SpecProblem[];
  constructor(problems: SpecProblem[], source?: string) {
    const where = source ? ` from ${JSON.stringify(source)}` : '';
    const n = problems.length;
    const lines = problems.map((p) => `  ${formatProblem(p)}`).join('\n');
    super('EINVAL_SPEC', `Cannot load manifests${where}: ${n} problem${n === 1 ? '' : 's'}\n${lines}`, {
      hint: 'Fix the fields named above; `podrun` checks the whole file before it creates anything.',
    });
    this.name = 'SpecError';
    this.problems = problems;
  }
}

/** "pod.yaml:12: Pod \"web\": spec.containers[1].resources.limits.memory: \"12Q\" is not a quantity" */
export function formatProblem(p: SpecProblem): string {
  const loc = p.source ? `${p.source}${p.line ? `:${p.line}` : ''}: ` : p.line ? `line ${p.line}: ` : '';
  return `${loc}${p.object}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
}

export function formatWarning(w: SpecWarning): string {
  const loc = w.source ? `${w.source}${w.line ? `:${w.line}` : ''}: ` : '';
  return `${loc}${w.object}: ${w.path ? `${w.path}: ` : ''}${w.message}`;
}

type Path = (string | number)[];

/** "spec.containers[1].resources.limits.memory"; odd keys quoted: metadata.labels["app.io/x"]. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else if (typeof k === 'string' && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(k)) out += out ? `.${k}` : k;
    else out += `[${JSON.stringify(String(k))}]`;
  }
  return out;
}

/**
 * The YAML documents of `text` and their line counter. A supervisor parses the same file at every
 * `up -d` and `down` of it: the last few texts are kept (the documents are only read afterwards:
 * toJS() and getIn() build new values), so a repeat costs a map lookup instead of the YAML parser.
 */
function parseYaml(text: string): { docs: Document.Parsed[] | EmptyStream; lineCounter: LineCounter } {
  const hit = yamlCache.get(text);
  if (hit) {
    yamlCache.delete(text); // most recently used last
    yamlCache.set(text, hit);
    return hit;
  }
  const lineCounter = new LineCounter();
  // YAML 1.1, as kubectl reads manifests (go-yaml v2): `defaultMode: 0644` is octal, `yes` is true,
  // `<<` merges; but like go-yaml, timestamps and sexagesimal numbers (1:20) stay strings.
  const docs = parseAllDocuments(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    version: '1.1',
    customTags: (tags) => tags.filter((t) => typeof t === 'string' || (t.tag !== 'tag:yaml.org,2002:timestamp' && (t as { format?: string }).format !== 'TIME')),
  });
  if (text.length <= 256 * 1024) {
    if (yamlCache.size >= 8) yamlCache.delete(yamlCache.keys().next().value!);
    yamlCache.set(text, { docs, lineCounter });
  }
  return { docs, lineCounter };
}
const yamlCache = new Map<string, { docs: Document.Parsed[] | EmptyStream; lineCounter: LineCounter }>();

/** Where one document's problems and warnings go, with the YAML nodes to find line numbers. */
class DocContext {
  object: string;
  /** The zod schema of this document's kind, for "did you mean" suggestions. */
  schema: z.ZodType | undefined;
  constructor(
    readonly set: Collector,
    readonly document: number,
    readonly doc: Document.Parsed | undefined,
    object: string,
  ) {
    this.object = object;
  }

  private line(path: Path): { line?: number; column?: number } {
    if (!this.doc) return {};
    for (let n = path.length; n >= 0; n--) {
      const node = this.doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === 'object' && node.range) {
        const pos = this.set.lineCounter.linePos(node.range[0]);
        return { line: pos.line, column: pos.col };
      }
    }
    return {};
  }

  /** The scalar as written in the YAML (`yes`, `0644`), when the path leads to one. */
  sourceText(path: Path): string | undefined {
    const node = this.doc?.getIn(path, true) as { source?: unknown } | undefined;
    return node && typeof node === 'object' && typeof node.source === 'string' ? node.source : undefined;
  }

  problem(path: Path, message: string): void {
    this.set.problems.push({ source: this.set.source, document: this.document, object: this.object, path: formatPath(path), message, ...this.line(path) });
  }

  warn(path: Path, message: string): void {
    this.set.warnings.push({ source: this.set.source, object: this.object, path: formatPath(path), message, line: this.line(path).line });
  }

  /** Warn about each ignored field present (and not empty) in `raw`. */
  ignored(raw: unknown, base: Path, keys: readonly string[], why = 'ignored: it has no meaning when podrun runs the pod on this one machine'): void {
    if (!raw || typeof raw !== 'object') return;
    for (const k of keys) {
      const v = (raw as Record<string, unknown>)[k];
      if (!isEmptyValue(v)) this.warn([...base, k], why);
    }
  }
}

interface Collector {
  source?: string;
  lineCounter: LineCounter;
  problems: SpecProblem[];
  warnings: SpecWarning[];
}

/**
 * Parse one or more YAML documents holding v1 Pod, ConfigMap and Secret objects.
 * Throws SpecError (code EINVAL_SPEC) listing every problem; returns plans with defaults applied.
 */
export function parseManifests(text: string, opts: ParseOptions = {}): ManifestSet {
  const { docs, lineCounter } = parseYaml(text);
  const col: Collector = { source: opts.source, lineCounter, problems: [], warnings: [] };
  // parseAllDocuments returns an EmptyStream (not an array) for empty input: nothing to do.
  const docList = Array.isArray(docs) ? docs : [];

  const pods: { input: PodInput; raw: Record<string, unknown>; ctx: DocContext }[] = [];
  const configMaps: ConfigMapPlan[] = [];
  const secrets: SecretPlan[] = [];
  const names = new Map<string, DocContext>();

  docList.forEach((doc, i) => {
    const n = i + 1;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) col.problems.push(yamlProblem(col, n, e));
      return;
    }
    const value = dropNulls(doc.toJS({ maxAliasCount: 100 }));
    if (value === undefined) return; // empty document ("---" at the end, comments only)
    const ctx = new DocContext(col, n, doc, `document ${n}`);
    if (typeof value !== 'object' || Array.isArray(value)) {
      ctx.problem([], `expected a Kubernetes object (a mapping with apiVersion and kind), got ${describe(value)}`);
      return;
    }
    const raw = value as Record<string, unknown>;
    const kind = raw.kind;
    const name = (raw.metadata as Record<string, unknown> | undefined)?.name;
    if (typeof kind === 'string' && typeof name === 'string') ctx.object = `${kind} ${JSON.stringify(name)}`;
    else if (typeof kind === 'string') ctx.object = `${kind} (document ${n})`;

    let schema: z.ZodType;
    if (kind === 'Pod') schema = schemas().podSchema;
    else if (kind === 'ConfigMap') schema = schemas().configMapSchema;
    else if (kind === 'Secret') schema = schemas().secretSchema;
    else {
      if (kind === undefined) ctx.problem(['kind'], 'is required (podrun reads v1 Pod, ConfigMap and Secret objects)');
      else {
        const api = typeof raw.apiVersion === 'string' ? ` (${raw.apiVersion})` : '';
        ctx.problem(['kind'], `${JSON.stringify(kind)}${api} is not supported: a file for podrun may hold v1 Pod, ConfigMap and Secret objects`);
      }
      return;
    }
    ctx.schema = schema;
    const r = schema.safeParse(raw, { reportInput: true });
    if (!r.success) {
      for (const issue of r.error.issues) reportIssue(ctx, issue);
      return;
    }
    const meta = (r.data as { metadata: MetadataInput }).metadata;
    if (!meta.name) {
      ctx.problem(['metadata', 'name'], 'is required');
      return;
    }
    ctx.ignored(raw.metadata, ['metadata'], IGNORED.metadata, 'ignored: set by the API server, not by podrun');
    const key = `${kind}/${meta.namespace ?? 'default'}/${meta.name}`;
    if (names.has(key)) {
      ctx.problem(['metadata', 'name'], `${JSON.stringify(meta.name)} is defined twice (also in ${names.get(key)!.document === n ? 'this' : `document ${names.get(key)!.document}`})`);
      return;
    }
    names.set(key, ctx);
    if (kind === 'Pod') pods.push({ input: r.data as PodInput, raw, ctx });
    else if (kind === 'ConfigMap') {
      const cm = convertConfigMap(r.data as ConfigMapInput, ctx);
      if (cm) configMaps.push({ ...cm, source: opts.source });
    } else {
      secrets.push({ ...convertSecret(r.data as SecretInput, ctx), source: opts.source });
    }
  });

  const set: ManifestSet = { pods: [], configMaps, secrets, warnings: col.warnings };
  for (const p of pods) {
    const plan = new PodConverter(p.input, p.raw, p.ctx, set, opts).convert();
    if (plan) set.pods.push(plan);
  }
  if (col.problems.length > 0) throw new SpecError(col.problems, opts.source);
  return set;
}

function yamlProblem(col: Collector, document: number, e: { message: string; pos: [number, number] }): SpecProblem {
  const pos = col.lineCounter.linePos(e.pos[0]);
  return {
    source: col.source,
    document,
    object: `document ${document}`,
    path: '',
    message: `YAML syntax error at column ${pos.col}: ${e.message}`,
    line: pos.line,
    column: pos.col,
  };
}

/** Kubernetes decodes `field: null` as "absent"; so do we (inside mappings only). */
function dropNulls(v: unknown): unknown {
  if (v === null) return undefined;
  if (Array.isArray(v)) return v.map((x) => (x === null ? null : dropNulls(x)));
  if (typeof v === 'object' && !(v instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as object)) {
      const d = dropNulls(x);
      if (d !== undefined) out[k] = d;
    }
    return out;
  }
  return v;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return `${typeof v} ${String(v)}`;
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a mapping',
  array: 'a list',
  record: 'a mapping',
};

type Issue = z.core.$ZodIssue;

function reportIssue(ctx: DocContext, issue: Issue): void {
  const path = issue.path as Path;
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeys(ctx.schema, path);
      for (const k of issue.keys) {
        const guess = closest(k, known);
        ctx.problem([...path, k], `unknown field ${JSON.stringify(k)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}`);
      }
      return;
    }
    case 'invalid_type': {
      if (input === undefined) return ctx.problem(path, 'is required');
      const exp = EXPECTED[issue.expected] ?? issue.expected;
      let msg = `expected ${exp}, got ${describe(input)}`;
      if (issue.expected === 'string' && (typeof input === 'number' || typeof input === 'boolean')) msg += ` (quote it: "${ctx.sourceText(path) ?? String(input)}")`;
      return ctx.problem(path, msg);
    }
    case 'invalid_value': {
      const vals = issue.values.map((v) => JSON.stringify(v));
      if (vals.length === 1) return ctx.problem(path, `must be ${vals[0]}, got ${describe(input)}`);
      return ctx.problem(path, `${JSON.stringify(input)} is not one of ${vals.join(', ')}`);
    }
    case 'too_small': {
      if (issue.origin === 'array') return ctx.problem(path, `must have at least ${issue.minimum} item${Number(issue.minimum) === 1 ? '' : 's'}`);
      if (issue.origin === 'string') return ctx.problem(path, 'must not be empty');
      return ctx.problem(path, `must be at least ${issue.minimum}, got ${String(input)}`);
    }
    case 'too_big': {
      if (issue.origin === 'array') return ctx.problem(path, `must have at most ${issue.maximum} items`);
      return ctx.problem(path, `must be at most ${issue.maximum}, got ${String(input)}`);
    }
    case 'invalid_union': {
      // Report the branch that got furthest (its issues are not a top-level type mismatch).
      const branches = issue.errors.filter((b) => !(b.length === 1 && b[0].code === 'invalid_type' && b[0].path.length === 0));
      if (branches.length === 1) {
        for (const sub of branches[0]) reportIssue(ctx, { ...sub, path: [...path, ...sub.path] } as Issue);
        return;
      }
      const types = issue.errors.map((b) => (b[0]?.code === 'invalid_type' ? EXPECTED[(b[0] as { expected: string }).expected] : undefined)).filter(Boolean);
      return ctx.problem(path, types.length ? `expected ${types.join(' or ')}, got ${describe(input)}` : issue.message);
    }
    default:
      return ctx.problem(path, issue.message);
  }
}

/** The field names the schema allows at `path` (walks object / array / optional / record / union). */
function knownKeys(schema: z.ZodType | undefined, path: Path): string[] {
  type Def = { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType; innerType?: z.ZodType; valueType?: z.ZodType; options?: z.ZodType[] };
  const def = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;
  const unwrap = (s: z.ZodType | undefined): z.ZodType | undefined => {
    while (s && (def(s).type === 'optional' || def(s).type === 'nullable' || def(s).type === 'default')) s = def(s).innerType;
    return s;
  };
  let cur = unwrap(schema);
  for (const k of path) {
    if (!cur) return [];
    const d = def(cur);
    if (d.type === 'object' && typeof k === 'string') cur = unwrap(d.shape?.[k]);
    else if (d.type === 'array' && typeof k === 'number') cur = unwrap(d.element);
    else if (d.type === 'record') cur = unwrap(d.valueType);
    else return [];
  }
  return cur && def(cur).type === 'object' ? Object.keys(def(cur).shape ?? {}) : [];
}

/** The known name closest to a mistyped one: same letters ignoring case, or edit distance ≤ 2. */
export function closest(word: string, known: string[]): string | undefined {
  const lower = word.toLowerCase();
  const same = known.find((k) => k.toLowerCase() === lower);
  if (same) return same;
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    const d = editDistance(lower, k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

// ---------------------------------------------------------------------------------------------
// ConfigMap / Secret
// ---------------------------------------------------------------------------------------------

function convertConfigMap(cm: ConfigMapInput, ctx: DocContext): ConfigMapPlan | undefined {
  const data = cm.data ?? {};
  const binaryData: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(cm.binaryData ?? {})) {
    if (k in data) ctx.problem(['binaryData', k], `key ${JSON.stringify(k)} is also in data`);
    binaryData[k] = new Uint8Array(Buffer.from(v.replace(/\s+/g, ''), 'base64'));
  }
  return {
    name: cm.metadata.name!,
    namespace: cm.metadata.namespace ?? 'default',
    labels: cm.metadata.labels ?? {},
    annotations: cm.metadata.annotations ?? {},
    data: { ...data },
    binaryData,
    immutable: cm.immutable ?? false,
  };
}

function convertSecret(s: SecretInput, _ctx: DocContext): SecretPlan {
  const data: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(s.data ?? {})) data[k] = new Uint8Array(Buffer.from(v.replace(/\s+/g, ''), 'base64'));
  for (const [k, v] of Object.entries(s.stringData ?? {})) data[k] = new Uint8Array(Buffer.from(v, 'utf8'));
  return {
    name: s.metadata.name!,
    namespace: s.metadata.namespace ?? 'default',
    labels: s.metadata.labels ?? {},
    annotations: s.metadata.annotations ?? {},
    type: s.type ?? 'Opaque',
    data,
    immutable: s.immutable ?? false,
  };
}

// ---------------------------------------------------------------------------------------------
// Pod
// ---------------------------------------------------------------------------------------------

/** Kubernetes' default pull policy: Always for ":latest" or no tag (without digest), else IfNotPresent. */
export function defaultPullPolicy(image: string): PullPolicy {
  const at = image.indexOf('@');
  const named = at >= 0 ? image.slice(0, at) : image;
  const last = named.slice(named.lastIndexOf('/') + 1);
  const colon = last.lastIndexOf(':');
  const tag = colon >= 0 ? last.slice(colon + 1) : at >= 0 ? '' : 'latest';
  return tag === 'latest' ? 'Always' : 'IfNotPresent';
}

/** kubelet: the pod name, truncated to 63 characters without trailing '-' or '.'. */
export function defaultHostname(podName: string): string {
  if (podName.length <= 63) return podName;
  return podName.slice(0, 63).replace(/[-.]+$/, '');
}

/** sha256 of canonical JSON (sorted keys) of the document without metadata.uid. */
function specDigest(raw: Record<string, unknown>): string {
  const copy = structuredClone(raw) as { metadata?: Record<string, unknown> };
  if (copy.metadata) delete copy.metadata.uid;
  return createHash('sha256').update(canonicalJson(copy)).digest('hex');
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

const CPU_DIVISORS = new Set(['1m', '1']);
const MEMORY_DIVISORS = new Set(['1', '1k', '1M', '1G', '1T', '1P', '1E', '1Ki', '1Mi', '1Gi', '1Ti', '1Pi', '1Ei']);
const RESOURCE_FIELDS = new Set(['limits.cpu', 'limits.memory', 'requests.cpu', 'requests.memory']);

/**
 * A downward-API field path: "metadata.name", "metadata.labels['app']", "status.podIP", …
 * `where` = 'env' (env valueFrom.fieldRef) or 'volume' (downwardAPI volume items).
 */
export function parseFieldPath(text: string, where: 'env' | 'volume'): FieldPath | string {
  const sub = /^metadata\.(labels|annotations)\['(.*)'\]$/.exec(text);
  if (sub) {
    const m = checkQualifiedName(sub[2]);
    if (m) return m;
    return { path: `metadata.${sub[1] as 'labels' | 'annotations'}`, key: sub[2] };
  }
  const common = ['metadata.name', 'metadata.namespace', 'metadata.uid'];
  const allowed =
    where === 'env'
      ? [...common, 'spec.nodeName', 'spec.serviceAccountName', 'status.hostIP', 'status.hostIPs', 'status.podIP', 'status.podIPs']
      : [...common, 'metadata.labels', 'metadata.annotations'];
  if (allowed.includes(text)) return { path: text } as FieldPath;
  return `${JSON.stringify(text)} is not a supported field path here (use ${allowed.join(', ')}, metadata.labels['KEY'] or metadata.annotations['KEY'])`;
}

class PodConverter {
  private readonly spec: PodInput['spec'];
  private readonly containerNames = new Set<string>();
  private readonly volumeNames = new Set<string>();
  private readonly hostPorts: { key: string; ip: string; path: Path }[] = [];
  private readonly namespace: string;
  private readonly facts: PodMetadataFacts;

  constructor(
    private readonly input: PodInput,
    private readonly raw: Record<string, unknown>,
    private readonly ctx: DocContext,
    private readonly set: ManifestSet,
    private readonly opts: ParseOptions,
  ) {
    this.spec = input.spec;
    this.namespace = input.metadata.namespace ?? 'default';
    this.facts = {
      name: input.metadata.name!,
      namespace: this.namespace,
      uid: input.metadata.uid ?? (opts.generateUid ?? randomUUID)(),
      labels: input.metadata.labels ?? {},
      annotations: input.metadata.annotations ?? {},
    };
  }

  convert(): PodPlan | undefined {
    const { input, raw, ctx, spec } = this;
    const before = this.problemCount();
    const rawSpec = raw.spec as Record<string, unknown>;
    ctx.ignored(raw, [], ['status'], 'ignored: status is reported by podrun, not read from the manifest');
    ctx.ignored(rawSpec, ['spec'], IGNORED.podSpec);
    const rawPodSc = rawSpec.securityContext as Record<string, unknown> | undefined;
    ctx.ignored(rawPodSc, ['spec', 'securityContext'], IGNORED.podSecurity, 'ignored: podrun does not apply SELinux, AppArmor or Windows options');
    if (spec.securityContext?.seccompProfile?.type === 'RuntimeDefault') {
      ctx.warn(['spec', 'securityContext', 'seccompProfile'], 'not enforced: podrun does not apply seccomp filters yet');
    }
    if (spec.securityContext?.seccompProfile?.type === 'Localhost') ctx.problem(['spec', 'securityContext', 'seccompProfile', 'type'], `"Localhost" ${'is not supported by podrun yet'}`);
    const os = (rawSpec.os as { name?: unknown } | undefined)?.name;
    if (os !== undefined && os !== 'linux') ctx.problem(['spec', 'os', 'name'], `${JSON.stringify(os)}: podrun runs Linux pods only`);

    const name = input.metadata.name!;
    const hostNetwork = spec.hostNetwork ?? false;
    const grace = spec.terminationGracePeriodSeconds ?? 30;

    // Names first: container names across init + app, volume names.
    const allContainers: [ContainerInput, Path][] = [
      ...(spec.initContainers ?? []).map((c, i) => [c, ['spec', 'initContainers', i]] as [ContainerInput, Path]),
      ...spec.containers.map((c, i) => [c, ['spec', 'containers', i]] as [ContainerInput, Path]),
    ];
    for (const [c, p] of allContainers) {
      if (this.containerNames.has(c.name)) ctx.problem([...p, 'name'], `${JSON.stringify(c.name)} is used by another container of this pod`);
      this.containerNames.add(c.name);
    }
    const volumes: VolumePlan[] = [];
    (spec.volumes ?? []).forEach((v, i) => {
      if (this.volumeNames.has(v.name)) ctx.problem(['spec', 'volumes', i, 'name'], `${JSON.stringify(v.name)} is used by another volume of this pod`);
      this.volumeNames.add(v.name);
      const plan = this.volume(v, ['spec', 'volumes', i]);
      if (plan) volumes.push(plan);
    });

    const initContainers = (spec.initContainers ?? []).map((c, i) => this.container(c, ['spec', 'initContainers', i], c.restartPolicy === 'Always' ? 'sidecar' : 'init', grace, hostNetwork));
    const containers = spec.containers.map((c, i) => this.container(c, ['spec', 'containers', i], 'app', grace, hostNetwork));

    const sysctls: { name: string; value: string }[] = [];
    const seenSysctl = new Set<string>();
    (spec.securityContext?.sysctls ?? []).forEach((s, i) => {
      const m = checkSysctl(s.name, hostNetwork);
      if (m) ctx.problem(['spec', 'securityContext', 'sysctls', i, 'name'], m);
      if (seenSysctl.has(s.name)) ctx.problem(['spec', 'securityContext', 'sysctls', i, 'name'], `${JSON.stringify(s.name)} is set twice`);
      seenSysctl.add(s.name);
      sysctls.push({ name: s.name, value: s.value });
    });

    const dnsPolicy = spec.dnsPolicy ?? 'ClusterFirst';
    if (dnsPolicy === 'None' && !(spec.dnsConfig?.nameservers?.length ?? 0)) {
      ctx.problem(['spec', 'dnsConfig', 'nameservers'], 'must list at least one nameserver when dnsPolicy is "None"');
    }
    if (spec.hostname === undefined && name.length > 63) ctx.warn(['metadata', 'name'], `longer than 63 characters: the hostname is truncated to ${JSON.stringify(defaultHostname(name))}`);

    if (this.problemCount() > before) return undefined;
    return {
      name,
      namespace: this.namespace,
      uid: this.facts.uid,
      labels: this.facts.labels,
      annotations: this.facts.annotations,
      hostname: spec.hostname ?? defaultHostname(name),
      ...(spec.subdomain !== undefined ? { subdomain: spec.subdomain } : {}),
      restartPolicy: spec.restartPolicy ?? 'Always',
      terminationGracePeriodSeconds: grace,
      ...(spec.activeDeadlineSeconds !== undefined ? { activeDeadlineSeconds: spec.activeDeadlineSeconds } : {}),
      shareProcessNamespace: spec.shareProcessNamespace ?? false,
      hostNetwork,
      hostPID: false,
      hostIPC: false,
      dnsPolicy,
      dnsConfig: {
        nameservers: spec.dnsConfig?.nameservers ?? [],
        searches: spec.dnsConfig?.searches ?? [],
        options: (spec.dnsConfig?.options ?? []).map((o) => (o.value === undefined ? { name: o.name } : { name: o.name, value: o.value })),
      },
      hostAliases: (spec.hostAliases ?? []).map((h) => ({ ip: h.ip, hostnames: h.hostnames ?? [] })),
      securityContext: {
        ...(spec.securityContext?.runAsUser !== undefined ? { runAsUser: spec.securityContext.runAsUser } : {}),
        ...(spec.securityContext?.runAsGroup !== undefined ? { runAsGroup: spec.securityContext.runAsGroup } : {}),
        ...(spec.securityContext?.runAsNonRoot !== undefined ? { runAsNonRoot: spec.securityContext.runAsNonRoot } : {}),
        supplementalGroups: spec.securityContext?.supplementalGroups ?? [],
        ...(spec.securityContext?.fsGroup !== undefined ? { fsGroup: spec.securityContext.fsGroup } : {}),
        sysctls,
      },
      volumes,
      initContainers,
      containers,
      ...(this.opts.source !== undefined ? { source: this.opts.source } : {}),
      specDigest: specDigest(raw),
    };
  }

  private problemCount(): number {
    return (this.ctx.set as Collector).problems.length;
  }

  // -------------------------------------------------------------------------------------------
  // volumes
  // -------------------------------------------------------------------------------------------

  private volume(v: VolumeInput, path: Path): VolumePlan | undefined {
    const { ctx } = this;
    const sources = (['emptyDir', 'hostPath', 'configMap', 'secret', 'downwardAPI'] as const).filter((k) => v[k] !== undefined);
    if (sources.length > 1) {
      ctx.problem(path, `may have only one volume type, found ${sources.join(', ')}`);
      return undefined;
    }
    const kind = sources[0] ?? 'emptyDir'; // Kubernetes defaults a volume without a source to emptyDir
    switch (kind) {
      case 'emptyDir': {
        const e = v.emptyDir ?? {};
        let sizeLimitBytes: number | undefined;
        if (e.sizeLimit !== undefined) sizeLimitBytes = this.bytes(e.sizeLimit, [...path, 'emptyDir', 'sizeLimit']);
        return { kind, name: v.name, medium: e.medium === 'Memory' ? 'Memory' : 'Disk', ...(sizeLimitBytes !== undefined ? { sizeLimitBytes } : {}) };
      }
      case 'hostPath':
        return { kind, name: v.name, path: v.hostPath!.path, type: v.hostPath!.type ?? '' };
      case 'configMap': {
        const c = v.configMap!;
        const optional = c.optional ?? false;
        const defaultMode = c.defaultMode ?? 0o644;
        const items = c.items?.map((it) => ({ key: it.key, path: it.path, ...(it.mode !== undefined ? { mode: it.mode } : {}) }));
        this.checkItemPaths(items ?? [], [...path, 'configMap', 'items']);
        const cm = this.set.configMaps.find((x) => x.name === c.name && x.namespace === this.namespace);
        const entries = cm ? { ...mapValues(cm.data, (s) => new Uint8Array(Buffer.from(s, 'utf8'))), ...cm.binaryData } : undefined;
        const resolved = resolveFiles('ConfigMap', c.name, entries, items, defaultMode, optional);
        if (resolved.state === 'missing') ctx.warn([...path, 'configMap'], `${resolved.reason}: containers mounting it cannot start`);
        return { kind, name: v.name, configMapName: c.name, ...(items ? { items } : {}), defaultMode, optional, resolved };
      }
      case 'secret': {
        const s = v.secret!;
        const optional = s.optional ?? false;
        const defaultMode = s.defaultMode ?? 0o644;
        const items = s.items?.map((it) => ({ key: it.key, path: it.path, ...(it.mode !== undefined ? { mode: it.mode } : {}) }));
        this.checkItemPaths(items ?? [], [...path, 'secret', 'items']);
        const sec = this.set.secrets.find((x) => x.name === s.secretName && x.namespace === this.namespace);
        const resolved = resolveFiles('Secret', s.secretName, sec?.data, items, defaultMode, optional);
        if (resolved.state === 'missing') ctx.warn([...path, 'secret'], `${resolved.reason}: containers mounting it cannot start`);
        return { kind, name: v.name, secretName: s.secretName, ...(items ? { items } : {}), defaultMode, optional, resolved };
      }
      case 'downwardAPI': {
        const d = v.downwardAPI!;
        const defaultMode = d.defaultMode ?? 0o644;
        const items: DownwardApiItem[] = [];
        const files: ProjectedFile[] = [];
        this.checkItemPaths(d.items ?? [], [...path, 'downwardAPI', 'items']);
        (d.items ?? []).forEach((it, i) => {
          const ip = [...path, 'downwardAPI', 'items', i];
          const mode = it.mode !== undefined ? { mode: it.mode } : {};
          if ((it.fieldRef === undefined) === (it.resourceFieldRef === undefined)) {
            ctx.problem(ip, 'must have exactly one of fieldRef and resourceFieldRef');
            return;
          }
          if (it.fieldRef) {
            const f = parseFieldPath(it.fieldRef.fieldPath, 'volume');
            if (typeof f === 'string') return ctx.problem([...ip, 'fieldRef', 'fieldPath'], f);
            items.push({ path: it.path, ...mode, fieldRef: f });
            files.push({ path: it.path, mode: it.mode ?? defaultMode, data: new Uint8Array(Buffer.from(metadataFieldValue(f, this.facts) ?? '', 'utf8')) });
          } else {
            const r = this.resourceFieldRef(it.resourceFieldRef!, [...ip, 'resourceFieldRef'], undefined);
            if (r) items.push({ path: it.path, ...mode, resourceFieldRef: r });
          }
        });
        return { kind, name: v.name, defaultMode, items, files };
      }
    }
  }

  private checkItemPaths(items: { path: string }[], path: Path): void {
    const seen = new Set<string>();
    items.forEach((it, i) => {
      if (seen.has(it.path)) this.ctx.problem([...path, i, 'path'], `${JSON.stringify(it.path)} is used by another item`);
      seen.add(it.path);
    });
  }

  private resourceFieldRef(r: ResourceFieldRefInput, path: Path, ownContainer: string | undefined): ResourceFieldRef | undefined {
    const { ctx } = this;
    let ok = true;
    if (!RESOURCE_FIELDS.has(r.resource)) {
      ctx.problem([...path, 'resource'], `${JSON.stringify(r.resource)} is not supported (use limits.cpu, limits.memory, requests.cpu or requests.memory)`);
      ok = false;
    }
    const containerName = r.containerName ?? ownContainer;
    if (containerName === undefined) {
      ctx.problem([...path, 'containerName'], 'is required in a downwardAPI volume');
      ok = false;
    } else if (!this.containerNames.has(containerName)) {
      ctx.problem([...path, 'containerName'], `${JSON.stringify(containerName)} is not a container of this pod`);
      ok = false;
    }
    let divisor = '1';
    if (r.divisor !== undefined) {
      divisor = formatQuantity(parseQuantity(r.divisor));
      const allowed = r.resource.endsWith('cpu') ? CPU_DIVISORS : MEMORY_DIVISORS;
      if (!allowed.has(String(r.divisor))) {
        ctx.problem([...path, 'divisor'], `${JSON.stringify(String(r.divisor))} is not a valid divisor for ${r.resource} (use ${[...allowed].join(', ')})`);
        ok = false;
      }
    }
    if (!ok) return undefined;
    return { containerName, resource: r.resource as ResourceFieldRef['resource'], divisor };
  }

  // -------------------------------------------------------------------------------------------
  // containers
  // -------------------------------------------------------------------------------------------

  private container(c: ContainerInput, path: Path, role: ContainerPlan['role'], grace: number, hostNetwork: boolean): ContainerPlan {
    const { ctx } = this;
    const rawC = pick(this.raw, path) as Record<string, unknown> | undefined;
    ctx.ignored(rawC, path, IGNORED.container, 'ignored: podrun does not resize containers in place');
    ctx.ignored(rawC?.securityContext, [...path, 'securityContext'], IGNORED.security, 'ignored: podrun does not apply SELinux, AppArmor or Windows options');
    if (c.securityContext?.seccompProfile?.type === 'RuntimeDefault') ctx.warn([...path, 'securityContext', 'seccompProfile'], 'not enforced: podrun does not apply seccomp filters yet');
    if (c.securityContext?.seccompProfile?.type === 'Localhost') ctx.problem([...path, 'securityContext', 'seccompProfile', 'type'], '"Localhost" is not supported by podrun yet');
    if (role === 'app' && c.restartPolicy !== undefined) ctx.problem([...path, 'restartPolicy'], 'is only allowed on initContainers (restartPolicy: Always makes a native sidecar)');
    if (role === 'init') {
      for (const k of ['livenessProbe', 'readinessProbe', 'startupProbe', 'lifecycle'] as const) {
        if (c[k] !== undefined) ctx.problem([...path, k], 'may not be set on an init container (only on a sidecar: an init container with restartPolicy: Always)');
      }
    }

    const ports = this.ports(c, path, hostNetwork);
    const resources = this.resources(c, path);
    const env = this.env(c, path);
    const envFrom: EnvFromPlan[] = [];
    (c.envFrom ?? []).forEach((e, i) => {
      const p = [...path, 'envFrom', i];
      if ((e.configMapRef === undefined) === (e.secretRef === undefined)) return ctx.problem(p, 'must have exactly one of configMapRef and secretRef');
      const ref = (e.configMapRef ?? e.secretRef)!;
      const kind = e.configMapRef ? 'configMap' : 'secret';
      envFrom.push({ kind, name: ref.name, prefix: e.prefix ?? '', optional: ref.optional ?? false });
      if (!(ref.optional ?? false)) this.warnMissingObject(kind, ref.name, [...p, e.configMapRef ? 'configMapRef' : 'secretRef']);
    });

    const mountPaths = new Set<string>();
    const volumeMounts = (c.volumeMounts ?? []).map((m, i) => {
      const p = [...path, 'volumeMounts', i];
      if (!this.volumeNames.has(m.name)) ctx.problem([...p, 'name'], `volume ${JSON.stringify(m.name)} is not declared in spec.volumes`);
      const mp = m.mountPath.replace(/\/+$/, '') || '/';
      if (mountPaths.has(mp)) ctx.problem([...p, 'mountPath'], `${JSON.stringify(m.mountPath)} is used by another volumeMount of this container`);
      mountPaths.add(mp);
      return { name: m.name, mountPath: m.mountPath, readOnly: m.readOnly ?? false, subPath: m.subPath ?? '' };
    });

    const sc = c.securityContext ?? {};
    const capabilities = { add: this.caps(sc.capabilities?.add ?? [], [...path, 'securityContext', 'capabilities', 'add']), drop: this.caps(sc.capabilities?.drop ?? [], [...path, 'securityContext', 'capabilities', 'drop']) };
    if (sc.allowPrivilegeEscalation === false) {
      if (sc.privileged) ctx.problem([...path, 'securityContext', 'allowPrivilegeEscalation'], 'cannot be false when privileged is true');
      if (capabilities.add.includes('SYS_ADMIN')) ctx.problem([...path, 'securityContext', 'allowPrivilegeEscalation'], 'cannot be false when capabilities.add has SYS_ADMIN');
    }

    const probe = (k: 'livenessProbe' | 'readinessProbe' | 'startupProbe') => (c[k] ? this.probe(c[k]!, [...path, k], k, ports) : undefined);
    const livenessProbe = probe('livenessProbe');
    const readinessProbe = probe('readinessProbe');
    const startupProbe = probe('startupProbe');
    const postStart = c.lifecycle?.postStart ? this.hook(c.lifecycle.postStart, [...path, 'lifecycle', 'postStart'], ports, grace) : undefined;
    const preStop = c.lifecycle?.preStop ? this.hook(c.lifecycle.preStop, [...path, 'lifecycle', 'preStop'], ports, grace) : undefined;

    return {
      name: c.name,
      role,
      image: c.image,
      imagePullPolicy: c.imagePullPolicy ?? defaultPullPolicy(c.image),
      ...(c.command?.length ? { command: c.command } : {}),
      ...(c.args?.length ? { args: c.args } : {}),
      ...(c.workingDir ? { workingDir: c.workingDir } : {}),
      env,
      envFrom,
      ports,
      resources,
      volumeMounts,
      securityContext: {
        ...(sc.runAsUser !== undefined ? { runAsUser: sc.runAsUser } : {}),
        ...(sc.runAsGroup !== undefined ? { runAsGroup: sc.runAsGroup } : {}),
        ...(sc.runAsNonRoot !== undefined ? { runAsNonRoot: sc.runAsNonRoot } : {}),
        readOnlyRootFilesystem: sc.readOnlyRootFilesystem ?? false,
        ...(sc.allowPrivilegeEscalation !== undefined ? { allowPrivilegeEscalation: sc.allowPrivilegeEscalation } : {}),
        privileged: sc.privileged ?? false,
        capabilities,
      },
      stdin: c.stdin ?? false,
      stdinOnce: c.stdinOnce ?? false,
      tty: c.tty ?? false,
      ...(livenessProbe ? { livenessProbe } : {}),
      ...(readinessProbe ? { readinessProbe } : {}),
      ...(startupProbe ? { startupProbe } : {}),
      lifecycle: { ...(postStart ? { postStart } : {}), ...(preStop ? { preStop } : {}) },
      terminationMessagePath: c.terminationMessagePath ?? '/dev/termination-log',
      terminationMessagePolicy: c.terminationMessagePolicy ?? 'File',
    };
  }

  private caps(names: string[], path: Path): string[] {
    const out: string[] = [];
    names.forEach((n, i) => {
      const norm = normalizeCapability(n);
      if (!norm) return this.ctx.problem([...path, i], `${JSON.stringify(n)} is not a Linux capability`);
      const short = norm === 'ALL' ? 'ALL' : norm.slice(4);
      if (!out.includes(short)) out.push(short);
    });
    return out;
  }

  private warnMissingObject(kind: 'configMap' | 'secret', name: string, path: Path): void {
    const found = kind === 'configMap' ? this.set.configMaps.some((x) => x.name === name && x.namespace === this.namespace) : this.set.secrets.some((x) => x.name === name && x.namespace === this.namespace);
    if (!found) {
      const what = kind === 'configMap' ? 'ConfigMap' : 'Secret';
      this.ctx.warn(path, `${what} ${JSON.stringify(name)} is not defined in this file (namespace ${JSON.stringify(this.namespace)}): the container will fail with CreateContainerConfigError unless it is provided`);
    }
  }

  private ports(c: ContainerInput, path: Path, hostNetwork: boolean): ContainerPortPlan[] {
    const { ctx } = this;
    const names = new Set<string>();
    return (c.ports ?? []).map((p, i) => {
      const pp = [...path, 'ports', i];
      if (p.name !== undefined) {
        if (names.has(p.name)) ctx.problem([...pp, 'name'], `${JSON.stringify(p.name)} is used by another port of this container`);
        names.add(p.name);
      }
      const protocol = p.protocol ?? 'TCP';
      let hostPort = p.hostPort ?? 0;
      if (hostNetwork) {
        if (hostPort !== 0 && hostPort !== p.containerPort) ctx.problem([...pp, 'hostPort'], `must equal containerPort (${p.containerPort}) with hostNetwork: true, got ${hostPort}`);
        hostPort = p.containerPort;
      }
      const hostIP = p.hostIP ?? '';
      if (hostPort !== 0) {
        const key = `${protocol}/${hostPort}`;
        const any = (ip: string) => ip === '' || ip === '0.0.0.0' || ip === '::';
        const clash = this.hostPorts.find((h) => h.key === key && (h.ip === hostIP || any(h.ip) || any(hostIP)));
        if (clash) ctx.problem([...pp, 'hostPort'], `${hostPort}/${protocol} is already used by ${formatPath(clash.path)}`);
        else this.hostPorts.push({ key, ip: hostIP, path: pp });
      }
      return { ...(p.name !== undefined ? { name: p.name } : {}), containerPort: p.containerPort, hostPort, hostIP, protocol };
    });
  }

  private bytes(v: string | number, path: Path): number | undefined {
    try {
      const q = parseQuantity(v);
      if (q.num < 0n) {
        this.ctx.problem(path, `${JSON.stringify(String(v))} must not be negative`);
        return undefined;
      }
      if (isFractional(q)) this.ctx.warn(path, `${JSON.stringify(String(v))} is a fraction of a byte, rounded up to ${quantityValue(q)} (did you mean "${String(v).replace(/m$/, 'Mi')}"?)`);
      return quantityValue(q);
    } catch (e) {
      if (!(e instanceof QuantityError)) throw e;
      this.ctx.problem(path, e.message);
      return undefined;
    }
  }

  private millis(v: string | number, path: Path): number | undefined {
    try {
      const q = parseQuantity(v);
      if (q.num < 0n) {
        this.ctx.problem(path, `${JSON.stringify(String(v))} must not be negative`);
        return undefined;
      }
      return quantityMilli(q);
    } catch (e) {
      if (!(e instanceof QuantityError)) throw e;
      this.ctx.problem(path, e.message);
      return undefined;
    }
  }

  private resources(c: ContainerInput, path: Path): ResourcesPlan {
    const out: ResourcesPlan = { requests: {}, limits: {} };
    for (const kind of ['limits', 'requests'] as const) {
      for (const [k, v] of Object.entries(c.resources?.[kind] ?? {})) {
        const p = [...path, 'resources', kind, k];
        if (k === 'cpu') {
          const m = this.millis(v, p);
          if (m !== undefined) out[kind].cpuMillis = m;
        } else if (k === 'memory') {
          const b = this.bytes(v, p);
          if (b !== undefined) out[kind].memoryBytes = b;
        } else if (k === 'ephemeral-storage') {
          this.ctx.warn(p, 'ignored: podrun does not limit ephemeral storage');
        } else if (k.startsWith('hugepages-') || k.includes('/')) {
          this.ctx.problem(p, `resource ${JSON.stringify(k)} is not supported by podrun yet`);
        } else {
          this.ctx.problem(p, `${JSON.stringify(k)} is not a resource name (use cpu, memory or ephemeral-storage)`);
        }
      }
    }
    // Kubernetes defaulting: a request absent but a limit present → request = limit.
    for (const k of ['cpuMillis', 'memoryBytes'] as const) {
      const lim = out.limits[k];
      const req = out.requests[k];
      if (lim !== undefined && req === undefined) out.requests[k] = lim;
      if (lim !== undefined && req !== undefined && req > lim) {
        const res = k === 'cpuMillis' ? 'cpu' : 'memory';
        this.ctx.problem([...path, 'resources', 'requests', res], `${JSON.stringify(String(c.resources?.requests?.[res]))} must be less than or equal to the ${res} limit ${JSON.stringify(String(c.resources?.limits?.[res]))}`);
      }
    }
    return out;
  }

  private env(c: ContainerInput, path: Path): EnvVarPlan[] {
    const { ctx } = this;
    const out: EnvVarPlan[] = [];
    (c.env ?? []).forEach((e, i) => {
      const p = [...path, 'env', i];
      const vf = e.valueFrom;
      if (vf === undefined) {
        out.push({ name: e.name, kind: 'value', value: e.value ?? '' });
        return;
      }
      if (e.value) return ctx.problem(p, 'may not have both value and valueFrom');
      const kinds = (['fieldRef', 'resourceFieldRef', 'configMapKeyRef', 'secretKeyRef'] as const).filter((k) => vf[k] !== undefined);
      if (kinds.length !== 1) return ctx.problem([...p, 'valueFrom'], 'must have exactly one of fieldRef, resourceFieldRef, configMapKeyRef and secretKeyRef');
      if (vf.fieldRef) {
        const f = parseFieldPath(vf.fieldRef.fieldPath, 'env');
        if (typeof f === 'string') return ctx.problem([...p, 'valueFrom', 'fieldRef', 'fieldPath'], f);
        out.push({ name: e.name, kind: 'fieldRef', fieldRef: f });
      } else if (vf.resourceFieldRef) {
        const r = this.resourceFieldRef(vf.resourceFieldRef, [...p, 'valueFrom', 'resourceFieldRef'], c.name);
        if (r) out.push({ name: e.name, kind: 'resourceFieldRef', resourceFieldRef: r });
      } else if (vf.configMapKeyRef) {
        const r = vf.configMapKeyRef;
        out.push({ name: e.name, kind: 'configMapKeyRef', configMapName: r.name, key: r.key, optional: r.optional ?? false });
        if (!r.optional) this.warnMissingObject('configMap', r.name, [...p, 'valueFrom', 'configMapKeyRef']);
      } else {
        const r = vf.secretKeyRef!;
        out.push({ name: e.name, kind: 'secretKeyRef', secretName: r.name, key: r.key, optional: r.optional ?? false });
        if (!r.optional) this.warnMissingObject('secret', r.name, [...p, 'valueFrom', 'secretKeyRef']);
      }
    });
    return out;
  }

  private port(port: number | string, path: Path, ports: ContainerPortPlan[]): { port: number; portName?: string } | undefined {
    if (typeof port === 'number') return { port };
    const found = ports.find((p) => p.name === port);
    if (!found) {
      this.ctx.problem(path, `${JSON.stringify(port)} is not the name of a port of this container`);
      return undefined;
    }
    return { port: found.containerPort, portName: port };
  }

  private httpGet(h: HttpGetInput, path: Path, ports: ContainerPortPlan[]): HttpGetAction | undefined {
    const port = this.port(h.port, [...path, 'port'], ports);
    if (!port) return undefined;
    const p = h.path ?? '/';
    return {
      kind: 'httpGet',
      scheme: h.scheme ?? 'HTTP',
      ...(h.host ? { host: h.host } : {}),
      path: p.startsWith('/') ? p : `/${p}`,
      ...port,
      httpHeaders: (h.httpHeaders ?? []).map((x) => ({ name: x.name, value: x.value })),
    };
  }

  private probe(pr: ProbeInput, path: Path, which: 'livenessProbe' | 'readinessProbe' | 'startupProbe', ports: ContainerPortPlan[]): ProbePlan | undefined {
    const { ctx } = this;
    const kinds = (['exec', 'httpGet', 'tcpSocket', 'grpc'] as const).filter((k) => pr[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.problem(path, kinds.length === 0 ? 'must have one handler: exec, httpGet, tcpSocket or grpc' : `may have only one handler, found ${kinds.join(', ')}`);
      return undefined;
    }
    const successThreshold = pr.successThreshold ?? 1;
    if (which !== 'readinessProbe' && successThreshold !== 1) ctx.problem([...path, 'successThreshold'], `must be 1 for a ${which}, got ${successThreshold}`);
    if (which === 'readinessProbe' && pr.terminationGracePeriodSeconds !== undefined) ctx.problem([...path, 'terminationGracePeriodSeconds'], 'may not be set on a readinessProbe');
    let handler: ProbeHandler | undefined;
    if (pr.exec) handler = { kind: 'exec', command: pr.exec.command };
    else if (pr.httpGet) handler = this.httpGet(pr.httpGet, [...path, 'httpGet'], ports);
    else if (pr.tcpSocket) {
      const port = this.port(pr.tcpSocket.port, [...path, 'tcpSocket', 'port'], ports);
      if (port) handler = { kind: 'tcpSocket', ...(pr.tcpSocket.host ? { host: pr.tcpSocket.host } : {}), ...port };
    } else if (pr.grpc) handler = { kind: 'grpc', port: pr.grpc.port, service: pr.grpc.service ?? '' };
    if (!handler) return undefined;
    return {
      handler,
      initialDelaySeconds: pr.initialDelaySeconds ?? 0,
      periodSeconds: pr.periodSeconds ?? 10,
      timeoutSeconds: pr.timeoutSeconds ?? 1,
      successThreshold,
      failureThreshold: pr.failureThreshold ?? 3,
      ...(pr.terminationGracePeriodSeconds !== undefined ? { terminationGracePeriodSeconds: pr.terminationGracePeriodSeconds } : {}),
    };
  }

  private hook(h: LifecycleHandlerInput, path: Path, ports: ContainerPortPlan[], grace: number): LifecycleHandler | undefined {
    const kinds = (['exec', 'httpGet', 'sleep'] as const).filter((k) => h[k] !== undefined);
    if (kinds.length !== 1) {
      this.ctx.problem(path, kinds.length === 0 ? 'must have one handler: exec, httpGet or sleep' : `may have only one handler, found ${kinds.join(', ')}`);
      return undefined;
    }
    if (h.exec) return { kind: 'exec', command: h.exec.command };
    if (h.httpGet) return this.httpGet(h.httpGet, [...path, 'httpGet'], ports);
    const seconds = h.sleep!.seconds;
    if (seconds > grace) this.ctx.problem([...path, 'sleep', 'seconds'], `must be at most terminationGracePeriodSeconds (${grace}), got ${seconds}`);
    return { kind: 'sleep', seconds };
  }
}

function pick(v: unknown, path: Path): unknown {
  let cur = v;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur;
}

function mapValues<A, B>(rec: Record<string, A>, f: (a: A) => B): Record<string, B> {
  const out: Record<string, B> = {};
  for (const [k, v] of Object.entries(rec)) out[k] = f(v);
  return out;
}

export { formatKeyValues, metadataFieldValue, resolveFiles, type PodMetadataFacts } from './objects.js';
