/**
 * zod (v4) schemas for the Kubernetes objects podrun reads: v1 Pod, ConfigMap, Secret.
 *
 * Structure and leaf values are checked here (types, enums, ranges, names, quantities); rules that
 * span fields (references, uniqueness, defaults) are checked by parse.ts on the typed result.
 * Every object is strict: an unknown field is an error. Fields Kubernetes has but that mean nothing
 * on one node are `ignored` (parse.ts warns about them); fields podrun does not implement yet are
 * `unsupported` (an error saying so).
 */
import { z } from 'zod';
import { parseQuantity, QuantityError } from './quantity.js';
import {
  checkAbsolutePath,
  checkConfigKey,
  checkDnsLabel,
  checkDnsSubdomain,
  checkEnvName,
  checkIp,
  checkLabelValue,
  checkPortName,
  checkQualifiedName,
  checkRelativePath,
} from './names.js';

export const UNSUPPORTED = 'is not supported by podrun yet';

/** An empty value ({} [] "" null) counts as absent for ignored/unsupported fields. */
export function isEmptyValue(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v as object).length === 0;
  return false;
}

/** A string checked by one of names.ts's predicates. */
function checked(check: (s: string) => string | undefined) {
  return z.string().superRefine((v, ctx) => {
    const m = check(v);
    if (m) ctx.addIssue({ code: 'custom', message: m });
  });
}

const unsupported = () =>
  z
    .any()
    .optional()
    .refine((v) => isEmptyValue(v), { message: UNSUPPORTED });
const ignored = () => z.unknown().optional();

/** A strict object with its ignored and unsupported Kubernetes fields declared. */
function k8s<S extends z.ZodRawShape>(shape: S, ignoredKeys: readonly string[] = [], unsupportedKeys: readonly string[] = []) {
  const extra: Record<string, z.ZodType> = {};
  for (const k of ignoredKeys) extra[k] = ignored();
  for (const k of unsupportedKeys) extra[k] = unsupported();
  return z.strictObject({ ...shape, ...extra } as S);
}

/** A file path inside a configMap / secret / downwardAPI volume. */
function checkItemPath(p: string): string | undefined {
  if (p === '') return 'must not be empty';
  return checkRelativePath(p) ?? (p.startsWith('..') ? `${JSON.stringify(p)} must not start with ".."` : undefined);
}

const int = () => z.number().int();
const nonNeg = () => int().min(0);
const port = () => int().min(1).max(65535);
const portOrName = () => z.union([port(), checked(checkPortName)]);
const mode = () => int().min(0).max(0o777);

export const quantity = () =>
  z.union([z.string(), z.number()]).superRefine((v, ctx) => {
    try {
      parseQuantity(v);
    } catch (e) {
      if (!(e instanceof QuantityError)) throw e;
      ctx.addIssue({ code: 'custom', message: e.message });
    }
  });

const labels = () =>
  z.record(z.string(), z.string()).superRefine((rec, ctx) => {
    for (const [k, v] of Object.entries(rec)) {
      const m = checkQualifiedName(k) ?? checkLabelValue(v);
      if (m) ctx.addIssue({ code: 'custom', path: [k], message: m });
    }
  });
const annotations = () =>
  z.record(z.string(), z.string()).superRefine((rec, ctx) => {
    for (const k of Object.keys(rec)) {
      const m = checkQualifiedName(k);
      if (m) ctx.addIssue({ code: 'custom', path: [k], message: m });
    }
  });

export const METADATA_IGNORED = [
  'creationTimestamp',
  'resourceVersion',
  'generation',
  'selfLink',
  'managedFields',
  'ownerReferences',
  'finalizers',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
];

export const SECURITY_IGNORED = ['seLinuxOptions', 'appArmorProfile', 'windowsOptions'];

export const UNSUPPORTED_VOLUME_TYPES = [
  'persistentVolumeClaim',
  'projected',
  'ephemeral',
  'csi',
  'image',
  'nfs',
  'iscsi',
  'gitRepo',
  'gcePersistentDisk',
  'awsElasticBlockStore',
  'azureDisk',
  'azureFile',
  'cephfs',
  'cinder',
  'fc',
  'flexVolume',
  'flocker',
  'glusterfs',
  'photonPersistentDisk',
  'portworxVolume',
  'quobyte',
  'rbd',
  'scaleIO',
  'storageos',
  'vsphereVolume',
];

/** Pod spec fields that have no meaning on one node: accepted with a warning naming them. */
export const POD_SPEC_IGNORED = [
  'nodeSelector',
  'nodeName',
  'affinity',
  'tolerations',
  'serviceAccountName',
  'serviceAccount',
  'automountServiceAccountToken',
  'priorityClassName',
  'priority',
  'schedulerName',
  'topologySpreadConstraints',
  'readinessGates',
  'preemptionPolicy',
  'runtimeClassName',
  'enableServiceLinks',
  'imagePullSecrets',
  'overhead',
  'schedulingGates',
  'os',
];

/** Kubernetes pod spec fields podrun does not implement yet: an error saying so. */
export const POD_SPEC_UNSUPPORTED = ['ephemeralContainers', 'setHostnameAsFQDN', 'resourceClaims', 'resources', 'hostUsers', 'hostnameOverride'];

/**
 * Builds every schema. Called once, on the first parse: building ~60 zod objects costs tens of
 * milliseconds, which commands that never parse a manifest should not pay at import time.
 */
function build() {
  // ---------------------------------------------------------------------------------------------
  // metadata
  // ---------------------------------------------------------------------------------------------


  const metadataSchema = k8s(
    {
      name: checked(checkDnsSubdomain).optional(),
      generateName: z.string().optional().refine((v) => v === undefined, { message: `${UNSUPPORTED}: set metadata.name` }),
      namespace: checked(checkDnsLabel).optional(),
      uid: z.string().min(1).optional(),
      labels: labels().optional(),
      annotations: annotations().optional(),
    },
    METADATA_IGNORED,
  );

  // ---------------------------------------------------------------------------------------------
  // containers
  // ---------------------------------------------------------------------------------------------

  const fieldRef = k8s({ fieldPath: z.string(), apiVersion: z.literal('v1').optional() });
  const resourceFieldRef = k8s({
    containerName: z.string().optional(),
    resource: z.string(),
    divisor: quantity().optional(),
  });
  const keyRef = k8s({ name: z.string().min(1), key: checked(checkConfigKey), optional: z.boolean().optional() });

  const envVar = k8s({
    name: checked(checkEnvName),
    value: z.string().optional(),
    valueFrom: k8s(
      {
        fieldRef: fieldRef.optional(),
        resourceFieldRef: resourceFieldRef.optional(),
        configMapKeyRef: keyRef.optional(),
        secretKeyRef: keyRef.optional(),
      },
      [],
      ['fileKeyRef'],
    ).optional(),
  });

  const objRef = k8s({ name: z.string().min(1), optional: z.boolean().optional() });
  const envFromSource = k8s({
    prefix: z.string().optional(),
    configMapRef: objRef.optional(),
    secretRef: objRef.optional(),
  });

  const containerPort = k8s({
    name: checked(checkPortName).optional(),
    containerPort: port(),
    hostPort: int().min(0).max(65535).optional(),
    hostIP: checked(checkIp).optional(),
    protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional(),
  });

  const resourceList = () => z.record(z.string(), quantity());
  const resources = k8s({ requests: resourceList().optional(), limits: resourceList().optional() }, [], ['claims']);

  const volumeMount = k8s(
    {
      name: z.string().min(1),
      mountPath: checked(checkAbsolutePath),
      readOnly: z.boolean().optional(),
      subPath: z
        .string()
        .optional()
        .superRefine((v, ctx) => {
          const m = v ? checkRelativePath(v) : undefined;
          if (m) ctx.addIssue({ code: 'custom', message: m });
        }),
      mountPropagation: z.enum(['None']).optional(),
      recursiveReadOnly: z.enum(['Disabled']).optional(),
    },
    [],
    ['subPathExpr'],
  );

  const seccomp = k8s({ type: z.enum(['RuntimeDefault', 'Unconfined', 'Localhost']), localhostProfile: z.string().optional() });

  const containerSecurity = k8s(
    {
      runAsUser: nonNeg().optional(),
      runAsGroup: nonNeg().optional(),
      runAsNonRoot: z.boolean().optional(),
      readOnlyRootFilesystem: z.boolean().optional(),
      allowPrivilegeEscalation: z.boolean().optional(),
      privileged: z.boolean().optional(),
      capabilities: k8s({ add: z.array(z.string()).optional(), drop: z.array(z.string()).optional() }).optional(),
      seccompProfile: seccomp.optional(),
      procMount: z.enum(['Default']).optional(),
    },
    SECURITY_IGNORED,
  );

  const execAction = k8s({ command: z.array(z.string()).min(1) });
  const httpGetAction = k8s({
    path: z.string().optional(),
    port: portOrName(),
    host: z.string().optional(),
    scheme: z.enum(['HTTP', 'HTTPS']).optional(),
    httpHeaders: z.array(k8s({ name: z.string().min(1), value: z.string() })).optional(),
  });
  const tcpSocketAction = k8s({ port: portOrName(), host: z.string().optional() });
  const grpcAction = k8s({ port: port(), service: z.string().optional() });

  const probe = k8s({
    exec: execAction.optional(),
    httpGet: httpGetAction.optional(),
    tcpSocket: tcpSocketAction.optional(),
    grpc: grpcAction.optional(),
    initialDelaySeconds: nonNeg().optional(),
    periodSeconds: int().min(1).optional(),
    timeoutSeconds: int().min(1).optional(),
    successThreshold: int().min(1).optional(),
    failureThreshold: int().min(1).optional(),
    terminationGracePeriodSeconds: int().min(1).optional(),
  });

  const lifecycleHandler = k8s(
    {
      exec: execAction.optional(),
      httpGet: httpGetAction.optional(),
      sleep: k8s({ seconds: nonNeg() }).optional(),
    },
    [],
    ['tcpSocket'],
  );

  const containerSchema = k8s(
    {
      name: checked(checkDnsLabel),
      image: z
        .string()
        .min(1)
        .superRefine((v, ctx) => {
          if (/\s/.test(v)) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not an image reference: it contains white space` });
        }),
      imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
      command: z.array(z.string()).optional(),
      args: z.array(z.string()).optional(),
      workingDir: checked(checkAbsolutePath).optional(),
      env: z.array(envVar).optional(),
      envFrom: z.array(envFromSource).optional(),
      ports: z.array(containerPort).optional(),
      resources: resources.optional(),
      volumeMounts: z.array(volumeMount).optional(),
      securityContext: containerSecurity.optional(),
      stdin: z.boolean().optional(),
      stdinOnce: z.boolean().optional(),
      tty: z.boolean().optional(),
      livenessProbe: probe.optional(),
      readinessProbe: probe.optional(),
      startupProbe: probe.optional(),
      lifecycle: k8s({ postStart: lifecycleHandler.optional(), preStop: lifecycleHandler.optional() }, [], ['stopSignal']).optional(),
      restartPolicy: z.enum(['Always']).optional(),
      terminationMessagePath: checked(checkAbsolutePath).optional(),
      terminationMessagePolicy: z.enum(['File', 'FallbackToLogsOnError']).optional(),
    },
    ['resizePolicy'],
    ['volumeDevices', 'restartPolicyRules'],
  );

  // ---------------------------------------------------------------------------------------------
  // volumes
  // ---------------------------------------------------------------------------------------------

  const keyToPath = k8s({
    key: checked(checkConfigKey),
    path: checked(checkItemPath),
    mode: mode().optional(),
  });

  const downwardItem = k8s({
    path: checked(checkItemPath),
    fieldRef: fieldRef.optional(),
    resourceFieldRef: resourceFieldRef.optional(),
    mode: mode().optional(),
  });


  const volume = k8s(
    {
      name: checked(checkDnsLabel),
      emptyDir: k8s({ medium: z.enum(['', 'Memory']).optional(), sizeLimit: quantity().optional() }).optional(),
      hostPath: k8s({
        path: checked(checkAbsolutePath),
        type: z.enum(['', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice']).optional(),
      }).optional(),
      configMap: k8s({
        name: checked(checkDnsSubdomain),
        items: z.array(keyToPath).optional(),
        defaultMode: mode().optional(),
        optional: z.boolean().optional(),
      }).optional(),
      secret: k8s({
        secretName: checked(checkDnsSubdomain),
        items: z.array(keyToPath).optional(),
        defaultMode: mode().optional(),
        optional: z.boolean().optional(),
      }).optional(),
      downwardAPI: k8s({ items: z.array(downwardItem).optional(), defaultMode: mode().optional() }).optional(),
    },
    [],
    UNSUPPORTED_VOLUME_TYPES,
  );

  // ---------------------------------------------------------------------------------------------
  // pod
  // ---------------------------------------------------------------------------------------------

  const podSecurity = k8s(
    {
      runAsUser: nonNeg().optional(),
      runAsGroup: nonNeg().optional(),
      runAsNonRoot: z.boolean().optional(),
      supplementalGroups: z.array(nonNeg()).optional(),
      fsGroup: nonNeg().optional(),
      sysctls: z.array(k8s({ name: z.string().min(1), value: z.string() })).optional(),
      seccompProfile: seccomp.optional(),
      supplementalGroupsPolicy: z.enum(['Merge']).optional(),
    },
    [...SECURITY_IGNORED, 'fsGroupChangePolicy', 'seLinuxChangePolicy'],
  );



  const podSpecSchema = k8s(
    {
      containers: z.array(containerSchema).min(1),
      initContainers: z.array(containerSchema).optional(),
      volumes: z.array(volume).optional(),
      restartPolicy: z.enum(['Always', 'OnFailure', 'Never']).optional(),
      terminationGracePeriodSeconds: nonNeg().optional(),
      activeDeadlineSeconds: int().min(1).optional(),
      dnsPolicy: z.enum(['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None']).optional(),
      dnsConfig: k8s({
        nameservers: z.array(checked(checkIp)).max(3).optional(),
        searches: z.array(z.string().min(1)).max(32).optional(),
        options: z.array(k8s({ name: z.string().min(1), value: z.string().optional() })).optional(),
      }).optional(),
      hostNetwork: z.boolean().optional(),
      hostPID: z.boolean().optional().refine((v) => v !== true, { message: `true ${UNSUPPORTED}` }),
      hostIPC: z.boolean().optional().refine((v) => v !== true, { message: `true ${UNSUPPORTED}` }),
      shareProcessNamespace: z.boolean().optional(),
      securityContext: podSecurity.optional(),
      hostname: checked(checkDnsLabel).optional(),
      subdomain: checked(checkDnsLabel).optional(),
      hostAliases: z.array(k8s({ ip: checked(checkIp), hostnames: z.array(checked(checkDnsSubdomain)).optional() })).optional(),
    },
    POD_SPEC_IGNORED,
    POD_SPEC_UNSUPPORTED,
  );

  const podSchema = k8s(
    {
      apiVersion: z.literal('v1'),
      kind: z.literal('Pod'),
      metadata: metadataSchema,
      spec: podSpecSchema,
    },
    ['status'],
  );

  const base64 = () =>
    z.string().superRefine((v, ctx) => {
      const s = v.replace(/\s+/g, '');
      if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) {
        ctx.addIssue({ code: 'custom', message: `is not valid base64 (${s.length > 20 ? s.slice(0, 20) + '…' : JSON.stringify(s)})` });
      }
    });

  const keyed = <T extends z.ZodType>(value: T) =>
    z.record(z.string(), value).superRefine((rec, ctx) => {
      for (const k of Object.keys(rec)) {
        const m = checkConfigKey(k);
        if (m) ctx.addIssue({ code: 'custom', path: [k], message: m });
      }
    });

  const configMapSchema = k8s(
    {
      apiVersion: z.literal('v1'),
      kind: z.literal('ConfigMap'),
      metadata: metadataSchema,
      data: keyed(z.string()).optional(),
      binaryData: keyed(base64()).optional(),
      immutable: z.boolean().optional(),
    },
  );

  const secretSchema = k8s({
    apiVersion: z.literal('v1'),
    kind: z.literal('Secret'),
    metadata: metadataSchema,
    type: z.string().optional(),
    data: keyed(base64()).optional(),
    stringData: keyed(z.string()).optional(),
    immutable: z.boolean().optional(),
  });

  return {
    metadataSchema,
    containerSchema,
    volume,
    probe,
    lifecycleHandler,
    httpGetAction,
    resourceFieldRef,
    podSpecSchema,
    podSchema,
    configMapSchema,
    secretSchema,
  };
}

let built: ReturnType<typeof build> | undefined;

/** The schemas, built on first use. */
export function schemas(): ReturnType<typeof build> {
  return (built ??= build());
}

type S = ReturnType<typeof build>;
export type PodInput = z.infer<S['podSchema']>;
export type ContainerInput = z.infer<S['containerSchema']>;
export type VolumeInput = z.infer<S['volume']>;
export type ProbeInput = z.infer<S['probe']>;
export type LifecycleHandlerInput = z.infer<S['lifecycleHandler']>;
export type HttpGetInput = z.infer<S['httpGetAction']>;
export type ResourceFieldRefInput = z.infer<S['resourceFieldRef']>;
export type ConfigMapInput = z.infer<S['configMapSchema']>;
export type SecretInput = z.infer<S['secretSchema']>;
export type MetadataInput = z.infer<S['metadataSchema']>;

/** For warnings: the ignored fields of each object kind (parse.ts reports those present). */
export const IGNORED = {
  metadata: METADATA_IGNORED,
  podSpec: POD_SPEC_IGNORED,
  security: SECURITY_IGNORED,
  podSecurity: [...SECURITY_IGNORED, 'fsGroupChangePolicy', 'seLinuxChangePolicy'],
  container: ['resizePolicy'],
} as const;
