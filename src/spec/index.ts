/**
 * spec/: Kubernetes manifests → plain plans. Nothing below this module sees Kubernetes shapes.
 *
 *   parseManifests(text, { source })      YAML → ManifestSet { pods, configMaps, secrets, warnings }
 *   resolveProcess(pod, c, image, files, extras) → ProcessSpec for the shim
 *   cgroupValues / containerCgroupValues / podCgroupValues → cgroup v1/v2 control-file values
 */
// PullPolicy is left out here: src/image exports the same union under that name (import it from
// './plan.js' inside the library).
export type {
  RestartPolicy,
  DnsPolicy,
  Protocol,
  HostPathType,
  PodPlan,
  DnsConfigPlan,
  HostAliasPlan,
  PodSecurityPlan,
  VolumePlan,
  EmptyDirVolume,
  HostPathVolume,
  ProjectedFile,
  KeyToPath,
  ResolvedFiles,
  ConfigMapVolume,
  SecretVolume,
  DownwardApiVolume,
  DownwardApiItem,
  ContainerPlan,
  FieldPath,
  ResourceFieldRef,
  EnvVarPlan,
  EnvFromPlan,
  ContainerPortPlan,
  ResourceValues,
  ResourcesPlan,
  VolumeMountPlan,
  ContainerSecurityPlan,
  HttpGetAction,
  ExecAction,
  TcpSocketAction,
  GrpcAction,
  SleepAction,
  ProbeHandler,
  LifecycleHandler,
  ProbePlan,
  ConfigMapPlan,
  SecretPlan,
  SpecWarning,
  SpecProblem,
  ManifestSet,
  CapabilitySets,
  ProcessSpec,
} from './plan.js';
export { parseManifests, SpecError, formatProblem, formatWarning, formatPath, defaultPullPolicy, defaultHostname, parseFieldPath, metadataFieldValue, formatKeyValues, resolveFiles } from './parse.js';
export type { ParseOptions, PodMetadataFacts } from './parse.js';
export * from './quantity.js';
export * from './resources.js';
export * from './capabilities.js';
export * from './image-config.js';
export { sysctlPath } from './names.js';
