// What ECS hands back for objects it was given: the same content decorated with
// read-only fields, filled-in defaults, reordered arrays and foreign tags, as in
// the DescribeTaskDefinition / DescribeServices API reference examples.
import type {
  CreateServiceCommandInput,
  DescribeTaskDefinitionCommandOutput,
  RegisterTaskDefinitionCommandInput,
  Service,
  Tag,
} from "@aws-sdk/client-ecs";

const ACCOUNT = "123456789012";
const REGION = "eu-west-1";
const clone = <T>(x: T): T => structuredClone(x);
const reversed = <T>(xs: T[] | undefined): T[] | undefined => (xs ? [...xs].reverse() : xs);

const foreignTags: Tag[] = [
  { key: "aws:cloudformation:stack-name", value: "platform" },
  { key: "team", value: "observability" },
];

export function describedTaskDefinition(input: RegisterTaskDefinitionCommandInput, revision = 3): Pick<DescribeTaskDefinitionCommandOutput, "taskDefinition" | "tags"> {
  const td = clone(input);
  return {
    taskDefinition: {
      taskDefinitionArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${td.family}:${revision}`,
      family: td.family,
      revision,
      status: "ACTIVE",
      taskRoleArn: td.taskRoleArn,
      executionRoleArn: td.executionRoleArn,
      networkMode: td.networkMode,
      cpu: td.cpu,
      memory: td.memory,
      requiresCompatibilities: td.requiresCompatibilities,
      compatibilities: ["EC2", "FARGATE"],
      requiresAttributes: [
        { name: "com.amazonaws.ecs.capability.logging-driver.awslogs" },
        { name: "ecs.capability.execution-role-awslogs" },
        { name: "ecs.capability.secrets.ssm.environment-variables" },
        { name: "com.amazonaws.ecs.capability.docker-remote-api.1.24" },
        { name: "ecs.capability.task-eni" },
      ],
      placementConstraints: [],
      registeredAt: new Date("2026-11-20T09:30:00Z"),
      registeredBy: `arn:aws:sts::${ACCOUNT}:assumed-role/lokistack-operator/ecs-task`,
      volumes: reversed(
        td.volumes?.map((v) => ({
          ...v,
          ...(v.efsVolumeConfiguration ? {} : { host: {} }),
          ...(v.efsVolumeConfiguration && !v.efsVolumeConfiguration.rootDirectory && !v.efsVolumeConfiguration.authorizationConfig
            ? { efsVolumeConfiguration: { ...v.efsVolumeConfiguration, rootDirectory: "/" } }
            : {}),
        })),
      ),
      containerDefinitions: reversed(
        td.containerDefinitions?.map((c) => ({
          cpu: 0,
          environment: reversed(c.environment) ?? [],
          volumesFrom: [],
          systemControls: [],
          ...c,
          essential: c.essential ?? true,
          portMappings: reversed(c.portMappings?.map((p) => ({ ...p, hostPort: p.containerPort, protocol: p.protocol ?? "tcp" }))) ?? [],
          mountPoints: reversed(c.mountPoints?.map((m) => ({ ...m, readOnly: m.readOnly ?? false }))) ?? [],
          logConfiguration: c.logConfiguration && { ...c.logConfiguration, secretOptions: [] },
        })),
      ),
    },
    tags: [...foreignTags, ...reversed(td.tags ?? [])!],
  };
}

export function describedService(input: CreateServiceCommandInput, taskDefinitionRevision = 3): Service {
  const s = clone(input);
  const serviceArn = `arn:aws:ecs:${REGION}:${ACCOUNT}:service/${s.cluster}/${s.serviceName}`;
  return {
    serviceArn,
    serviceName: s.serviceName,
    clusterArn: `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${s.cluster}`,
    loadBalancers: [],
    serviceRegistries: [],
    status: "ACTIVE",
    desiredCount: s.desiredCount,
    runningCount: s.desiredCount,
    pendingCount: 0,
    launchType: s.launchType,
    platformVersion: s.platformVersion,
    platformFamily: "Linux",
    taskDefinition: `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${s.taskDefinition}:${taskDefinitionRevision}`,
    deploymentConfiguration: {
      ...s.deploymentConfiguration,
      alarms: { alarmNames: [], enable: false, rollback: false },
    },
    deployments: [
      {
        id: "ecs-svc/9223370556150183303",
        status: "PRIMARY",
        taskDefinition: `arn:aws:ecs:${REGION}:${ACCOUNT}:task-definition/${s.taskDefinition}:${taskDefinitionRevision}`,
        desiredCount: s.desiredCount,
        pendingCount: 0,
        runningCount: s.desiredCount,
        failedTasks: 0,
        createdAt: new Date("2026-11-20T09:31:00Z"),
        updatedAt: new Date("2026-11-20T09:33:00Z"),
        launchType: s.launchType,
        platformVersion: "1.4.0",
        platformFamily: "Linux",
        networkConfiguration: s.networkConfiguration,
        rolloutState: "COMPLETED",
        rolloutStateReason: "ECS deployment ecs-svc/9223370556150183303 completed.",
      },
    ],
    roleArn: `arn:aws:iam::${ACCOUNT}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS`,
    events: [
      { id: "6f1c6f3c-1d2e-4f60-9a3e-0b5c1f7e8a90", createdAt: new Date("2026-11-20T09:33:00Z"), message: `(service ${s.serviceName}) has reached a steady state.` },
    ],
    createdAt: new Date("2026-11-20T09:31:00Z"),
    placementConstraints: [],
    placementStrategy: [],
    networkConfiguration: {
      awsvpcConfiguration: {
        subnets: reversed(s.networkConfiguration?.awsvpcConfiguration?.subnets),
        securityGroups: reversed(s.networkConfiguration?.awsvpcConfiguration?.securityGroups),
        assignPublicIp: s.networkConfiguration?.awsvpcConfiguration?.assignPublicIp ?? "DISABLED",
      },
    },
    healthCheckGracePeriodSeconds: 0,
    schedulingStrategy: "REPLICA",
    deploymentController: { type: "ECS" },
    tags: [...foreignTags, ...reversed(s.tags ?? [])!],
    createdBy: `arn:aws:iam::${ACCOUNT}:role/lokistack-operator`,
    enableECSManagedTags: s.enableECSManagedTags,
    propagateTags: s.propagateTags,
    enableExecuteCommand: s.enableExecuteCommand,
    availabilityZoneRebalancing: s.availabilityZoneRebalancing,
  };
}
