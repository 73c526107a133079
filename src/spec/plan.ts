/**
 * The plain plan a Kubernetes `v1 Pod` manifest turns into.
 *
 * `parseManifests()` (parse.ts) is the only code that sees Kubernetes shapes: it validates the YAML
 * and produces these types with every default applied. Below `spec/`, nobody sees `unknown`,
 * optional-with-a-default fields or Kubernetes quirks; an absent optional field here means
 * "not set, and there is no default" (e.g. `command` absent = use the image's Entrypoint).
 *
 * Units: CPU in millicores, memory in bytes (exact integers), times in seconds, file modes as numbers
 * (0o644), capabilities as upper-case names WITHOUT the `CAP_` prefix ("NET_ADMIN").
 */

// ---------------------------------------------------------------------------------------------
// Enumerations
// ---------------------------------------------------------------------------------------------

export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';
export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';
/** Kubernetes' dnsPolicy. With no cluster DNS on one node, ClusterFirst behaves like Default. */
export type DnsPolicy = 'ClusterFirst' | 'ClusterFirstWithHostNet' | 'Default' | 'None';
export type Protocol = 'TCP' | 'UDP' | 'SCTP';
/** hostPath `type`; '' = no check before mounting (Kubernetes' default). */
export type HostPathType =
  | ''
  | 'DirectoryOrCreate'
  | 'Directory'
  | 'FileOrCreate'
  | 'File'
  | 'Socket'
  | 'CharDevice'
  | 'BlockDevice';

// ---------------------------------------------------------------------------------------------
// The pod
// ---------------------------------------------------------------------------------------------

export interface PodPlan {
  /** metadata.name, a DNS-1123 subdomain (≤ 253). */
  name: string;
  /** metadata.namespace, a DNS-1123 label; default "default". */
  namespace: string;
  /** metadata.uid, or a fresh crypto.randomUUID() when the manifest has none. */
  uid: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /**
   * The UTS hostname: spec.hostname, else the pod name truncated to 63 characters the way kubelet
   * does (trailing '-' and '.' removed). At most 63 characters; a DNS-1123 label when set by
   * spec.hostname, else the pod name, which may contain dots (kubelet uses it as is).
   */
  hostname: string;
  /** spec.subdomain: the FQDN becomes `<hostname>.<subdomain>.<namespace>.svc.<cluster domain>`. */
  subdomain?: string;
  /** spec.restartPolicy, default 'Always'. */
  restartPolicy: RestartPolicy;
  /** Default 30. 0 = SIGKILL at once. */
  terminationGracePeriodSeconds: number;
  /** Active deadline for the whole pod (seconds since start), if set; ≥ 1. */
  activeDeadlineSeconds?: number;
  /** One PID namespace for all containers of the pod (with an init that reaps orphans). Default false. */
  shareProcessNamespace: boolean;
  /**
   * Run in the host's network namespace; no CNI. Default false. As in Kubernetes, such a pod also
   * shares the host's UTS namespace, so `hostname` is not applied to the host.
   */
  hostNetwork: boolean;
  /**
   * hostPID and hostIPC are REFUSED by the parser when true ("not supported by podrun yet"),
   * so they are always false in a plan; kept as literal types so the runtime can rely on it.
   */
  hostPID: false;
  hostIPC: false;
  /** Default 'ClusterFirst'. */
  dnsPolicy: DnsPolicy;
  /** spec.dnsConfig merged into resolv.conf (empty lists when absent). */
  dnsConfig: DnsConfigPlan;
  /** Extra /etc/hosts entries, in manifest order. */
  hostAliases: HostAliasPlan[];
  securityContext: PodSecurityPlan;
  /** In manifest order; names unique. */
  volumes: VolumePlan[];
  /** In manifest order. Regular ones (role 'init') and native sidecars (role 'sidecar'). */
  initContainers: ContainerPlan[];
  /** In manifest order; at least one. */
  containers: ContainerPlan[];
  /** The file (or other source name) this pod came from, when the caller passed one. */
  source?: string;
  /**
   * sha256 (hex) of the manifest document as parsed (canonical JSON, keys sorted, metadata.uid
   * left out), so a second `up` can tell "same spec" (no-op) from "different spec" (refuse).
   */
  specDigest: string;
}

export interface DnsConfigPlan {
  nameservers: string[];
  searches: string[];
  options: { name: string; value?: string }[];
}

export interface HostAliasPlan {
  ip: string;
  hostnames: string[];
}

/** spec.securityContext: defaults for every container, plus pod-wide settings. */
export interface PodSecurityPlan {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  /** Added to every container process's supplementary groups. */
  supplementalGroups: number[];
  /** Owner group of volumes that support it (emptyDir, configMap, secret, downwardAPI), also added
   * to every container's supplementary groups. */
  fsGroup?: number;
  /**
   * Namespaced sysctls only (kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, net.*; net.* not
   * with hostNetwork), in order, names as written: use `sysctlPath(name)` for the /proc/sys path.
   */
  sysctls: { name: string; value: string }[];
}

// ---------------------------------------------------------------------------------------------
// Volumes
// ---------------------------------------------------------------------------------------------

export type VolumePlan = EmptyDirVolume | HostPathVolume | ConfigMapVolume | SecretVolume | DownwardApiVolume;

export interface EmptyDirVolume {
  kind: 'emptyDir';
  name: string;
  /** 'Memory' = tmpfs; 'Disk' = a directory on the node ('' in the manifest). */
  medium: 'Disk' | 'Memory';
  /** sizeLimit in bytes, if set (tmpfs size= for Memory; advisory for Disk). */
  sizeLimitBytes?: number;
}

export interface HostPathVolume {
  kind: 'hostPath';
  name: string;
  /** Absolute host path, as written (not resolved). */
  path: string;
  type: HostPathType;
}

/** One file of a configMap / secret / downwardAPI volume, ready to write. */
export interface ProjectedFile {
  /** Relative path inside the volume ("config/app.yaml"); never absolute, never contains "..". */
  path: string;
  /** File mode (item mode, else the volume's defaultMode). */
  mode: number;
  data: Uint8Array;
}

/** The manifest's `items` entry for configMap and secret volumes. */
export interface KeyToPath {
  key: string;
  path: string;
  mode?: number;
}

/**
 * Result of looking the ConfigMap / Secret up in the same ManifestSet at parse time.
 * - `found`: files are final (all keys, or only `items`).
 * - `optional-missing`: the object is absent (or an item key is absent) and the volume is optional:
 *    mount an empty volume.
 * - `missing`: absent and not optional: the container cannot start (kubelet reports the pod as
 *   ContainerCreating with a FailedMount event); `reason` says which object or key is missing.
 *   Parsing also emits a warning for this. A runtime that learns ConfigMaps from elsewhere can
 *   re-resolve with `resolveConfigVolume()` from image-config.ts.
 */
export type ResolvedFiles =
  | { state: 'found'; files: ProjectedFile[] }
  | { state: 'optional-missing'; files: ProjectedFile[] }
  | { state: 'missing'; reason: string };

export interface ConfigMapVolume {
  kind: 'configMap';
  name: string;
  configMapName: string;
  items?: KeyToPath[];
  /** Default 0o644. */
  defaultMode: number;
  optional: boolean;
  resolved: ResolvedFiles;
}

export interface SecretVolume {
  kind: 'secret';
  name: string;
  secretName: string;
  items?: KeyToPath[];
  /** Default 0o644 (as Kubernetes). */
  defaultMode: number;
  optional: boolean;
  resolved: ResolvedFiles;
}

export interface DownwardApiVolume {
  kind: 'downwardAPI';
  name: string;
  /** Default 0o644. */
  defaultMode: number;
  items: DownwardApiItem[];
  /**
   * Files computed at parse time for the fieldRef items (metadata.name/namespace/uid/labels/
   * annotations). resourceFieldRef items may need node facts (no limit set → node allocatable), so
   * the runtime renders the complete list with `downwardApiFiles(pod, volume, node)` (image-config.ts).
   */
  files: ProjectedFile[];
}

export type DownwardApiItem =
  | { path: string; mode?: number; fieldRef: FieldPath }
  | { path: string; mode?: number; resourceFieldRef: ResourceFieldRef };

// ---------------------------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------------------------

export interface ContainerPlan {
  /** DNS-1123 label, unique across initContainers and containers. */
  name: string;
  /**
   * 'init' = a regular init container (runs to completion, in order, before the app containers);
   * 'sidecar' = an init container with restartPolicy Always (native sidecar);
   * 'app' = spec.containers[].
   */
  role: 'init' | 'sidecar' | 'app';
  /** The image reference as written ("busybox", "registry:5000/x/y:1@sha256:…"). */
  image: string;
  /** Default: 'Always' when the tag is "latest" or absent (and no digest), else 'IfNotPresent'. */
  imagePullPolicy: PullPolicy;
  /** Absent = use the image's Entrypoint (see resolveProcess). Never an empty array. */
  command?: string[];
  /** Absent = use the image's Cmd (when command is absent too). Never an empty array. */
  args?: string[];
  /** Absent = image WorkingDir, else "/". Always absolute when present. */
  workingDir?: string;
  /** In manifest order; names are valid env var names (duplicates allowed: last one wins). */
  env: EnvVarPlan[];
  envFrom: EnvFromPlan[];
  ports: ContainerPortPlan[];
  resources: ResourcesPlan;
  volumeMounts: VolumeMountPlan[];
  securityContext: ContainerSecurityPlan;
  /** Keep stdin open (default false). */
  stdin: boolean;
  stdinOnce: boolean;
  /** Allocate a terminal (default false). */
  tty: boolean;
  livenessProbe?: ProbePlan;
  readinessProbe?: ProbePlan;
  startupProbe?: ProbePlan;
  lifecycle: { postStart?: LifecycleHandler; preStop?: LifecycleHandler };
  /** Default "/dev/termination-log". */
  terminationMessagePath: string;
  /** Default 'File'. */
  terminationMessagePolicy: 'File' | 'FallbackToLogsOnError';
}

/** A downward-API field path, already validated. */
export type FieldPath =
  | { path: 'metadata.name' }
  | { path: 'metadata.namespace' }
  | { path: 'metadata.uid' }
  | { path: 'metadata.labels' } // downwardAPI volumes only
  | { path: 'metadata.annotations' } // downwardAPI volumes only
  | { path: 'metadata.labels'; key: string } // metadata.labels['key']
  | { path: 'metadata.annotations'; key: string }
  | { path: 'spec.nodeName' } // = the node's hostname
  | { path: 'spec.serviceAccountName' } // "" (no service accounts on one node)
  | { path: 'status.hostIP' }
  | { path: 'status.hostIPs' }
  | { path: 'status.podIP' }
  | { path: 'status.podIPs' };

export interface ResourceFieldRef {
  /** Container whose resources are read; defaults to the container itself for env. */
  containerName?: string;
  resource: 'limits.cpu' | 'limits.memory' | 'requests.cpu' | 'requests.memory';
  /**
   * Canonical quantity string, default "1". The value exposed is ceil(resource / divisor):
   * cpu with divisor "1" → cores rounded up, "1m" → millicores; memory "1" → bytes, "1Mi" → MiB.
   */
  divisor: string;
}

export type EnvVarPlan =
  | { name: string; kind: 'value'; value: string } // value may contain $(VAR) references
  | { name: string; kind: 'fieldRef'; fieldRef: FieldPath }
  | { name: string; kind: 'resourceFieldRef'; resourceFieldRef: ResourceFieldRef }
  | { name: string; kind: 'configMapKeyRef'; configMapName: string; key: string; optional: boolean }
  | { name: string; kind: 'secretKeyRef'; secretName: string; key: string; optional: boolean };

export interface EnvFromPlan {
  kind: 'configMap' | 'secret';
  /** ConfigMap or Secret name. */
  name: string;
  /** Prepended to every key ("" when absent). */
  prefix: string;
  optional: boolean;
}

export interface ContainerPortPlan {
  /** IANA_SVC_NAME (≤ 15 chars), unique within the container, if set. */
  name?: string;
  containerPort: number;
  /** 0 = not published on the host. With hostNetwork, equals containerPort. */
  hostPort: number;
  /** Host address for hostPort; "" = all. */
  hostIP: string;
  /** Default 'TCP'. */
  protocol: Protocol;
}

/** Exact integers. Absent = not set. Kubernetes defaulting applied: a request absent but a limit
 * present → request = limit. */
export interface ResourceValues {
  cpuMillis?: number;
  memoryBytes?: number;
}

export interface ResourcesPlan {
  requests: ResourceValues;
  limits: ResourceValues;
}

export interface VolumeMountPlan {
  /** Names a volume of the pod (checked). */
  name: string;
  /** Absolute path inside the container; unique within the container. */
  mountPath: string;
  /** Default false. */
  readOnly: boolean;
  /** Relative path inside the volume ("" = the whole volume); never contains "..". */
  subPath: string;
}

/** container.securityContext as written; pod-level defaults are merged by resolveProcess(). */
export interface ContainerSecurityPlan {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  /** Default false. */
  readOnlyRootFilesystem: boolean;
  /**
   * Absent = Kubernetes' default: true (no_new_privs NOT set). false → no_new_privs.
   * Refused together with privileged: true or capabilities.add SYS_ADMIN (as Kubernetes).
   */
  allowPrivilegeEscalation?: boolean;
  /** Default false. privileged → all capabilities, no masked paths, /sys read-write. */
  privileged: boolean;
  /** Upper-case names without "CAP_"; "ALL" kept as "ALL". Deduplicated, order kept. */
  capabilities: { add: string[]; drop: string[] };
}

// ---------------------------------------------------------------------------------------------
// Probes and hooks
// ---------------------------------------------------------------------------------------------

export interface HttpGetAction {
  kind: 'httpGet';
  /** Default 'HTTP'. */
  scheme: 'HTTP' | 'HTTPS';
  /** Absent = the pod IP (podrun: connect inside the pod's network namespace to 127.0.0.1). */
  host?: string;
  /** Default "/". */
  path: string;
  /** Resolved port number (a named port is looked up in the container's ports by the parser). */
  port: number;
  /** The name, when the manifest used a named port. */
  portName?: string;
  /** In order; names may repeat. A "Host" header overrides the Host. */
  httpHeaders: { name: string; value: string }[];
}

export interface ExecAction {
  kind: 'exec';
  /** Run as-is (no shell, no $(VAR) expansion), inside the container, never empty. */
  command: string[];
}

export interface TcpSocketAction {
  kind: 'tcpSocket';
  host?: string;
  port: number;
  portName?: string;
}

export interface GrpcAction {
  kind: 'grpc';
  port: number;
  /** grpc.health.v1 service name; default "" (the server's overall health). */
  service: string;
}

export interface SleepAction {
  kind: 'sleep';
  seconds: number;
}

export type ProbeHandler = ExecAction | HttpGetAction | TcpSocketAction | GrpcAction;
export type LifecycleHandler = ExecAction | HttpGetAction | SleepAction;

export interface ProbePlan {
  handler: ProbeHandler;
  /** Default 0. */
  initialDelaySeconds: number;
  /** Default 10, ≥ 1. */
  periodSeconds: number;
  /** Default 1, ≥ 1. */
  timeoutSeconds: number;
  /** Default 1; must be 1 for liveness and startup probes. */
  successThreshold: number;
  /** Default 3, ≥ 1. */
  failureThreshold: number;
  /** Liveness/startup only: overrides the pod's grace period when this probe kills the container. */
  terminationGracePeriodSeconds?: number;
}

// ---------------------------------------------------------------------------------------------
// ConfigMaps, Secrets, and a parsed file
// ---------------------------------------------------------------------------------------------

export interface ConfigMapPlan {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** UTF-8 values. Keys unique across data and binaryData. */
  data: Record<string, string>;
  /** Decoded from base64. */
  binaryData: Record<string, Uint8Array>;
  immutable: boolean;
  source?: string;
}

export interface SecretPlan {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Default "Opaque". */
  type: string;
  /** `data` decoded from base64, then `stringData` (UTF-8) merged over it, as the API server does. */
  data: Record<string, Uint8Array>;
  immutable: boolean;
  source?: string;
}

/** A field accepted but ignored (meaningless on one node), or another non-fatal remark. */
export interface SpecWarning {
  source?: string;
  /** "Pod \"web\"" */
  object: string;
  /** "spec.nodeSelector" */
  path: string;
  message: string;
  /** 1-based line in the source text, when known. */
  line?: number;
}

/** One validation problem; SpecError carries all of them. */
export interface SpecProblem {
  source?: string;
  /** 1-based document index in a multi-document file. */
  document: number;
  /** "Pod \"web\"", or "document 2" when the kind/name is unknown. */
  object: string;
  /** "spec.containers[1].resources.limits.memory" ("" for the document itself). */
  path: string;
  /** "\"12Q\" is not a quantity" */
  message: string;
  line?: number;
  column?: number;
}

export interface ManifestSet {
  pods: PodPlan[];
  configMaps: ConfigMapPlan[];
  secrets: SecretPlan[];
  warnings: SpecWarning[];
}

// ---------------------------------------------------------------------------------------------
// The resolved process (output of resolveProcess() in image-config.ts, input of the shim)
// ---------------------------------------------------------------------------------------------

/** Capability names WITH the "CAP_" prefix, sorted by capability number. */
export interface CapabilitySets {
  bounding: string[];
  effective: string[];
  permitted: string[];
  /** Always empty (containerd dropped inheritable caps for CVE-2022-24769). */
  inheritable: string[];
  /** Always empty (Kubernetes has no ambient capabilities). */
  ambient: string[];
}

/** Everything the shim needs to exec the container's first process, fully resolved. */
export interface ProcessSpec {
  /** argv; args[0] is the program (looked up in PATH of `env` by the shim when not absolute). */
  args: string[];
  /** "NAME=value", image Env first, then the container's env overriding by name. */
  env: string[];
  /** Absolute working directory. */
  cwd: string;
  uid: number;
  gid: number;
  /** Supplementary groups: primary gid, /etc/group memberships, fsGroup, supplementalGroups; unique. */
  additionalGids: number[];
  /** Set PR_SET_NO_NEW_PRIVS (allowPrivilegeEscalation: false). */
  noNewPrivileges: boolean;
  capabilities: CapabilitySets;
  readonlyRootfs: boolean;
  privileged: boolean;
  terminal: boolean;
  /** Non-fatal remarks (e.g. envFrom keys that are not valid variable names, skipped as kubelet does). */
  warnings: string[];
}
