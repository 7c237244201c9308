"""What the operator is told: one pydantic-settings class read from ``MLOPS_*`` variables.

The same names are flags of ``mlops operator run`` (a flag wins over its variable),
and the Helm chart and kustomize manifests set the variables. Defaults fit one
replica in a cluster: cluster-wide, standalone (no peering), probes and metrics on
controller-runtime's usual ports so existing probe and scrape configurations fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mlops_operator import DEFAULT_IMAGE_REPO, __version__
from mlops_operator.api.fields import ResourceRequirements
from mlops_operator.api.pods import PodOverrides, WorkloadSecurityContext, contract_problems
from mlops_operator.podcontract import IMAGE_USER

__all__ = [
    "PROJECT_IMAGE_PREFIX",
    "WORKLOAD_DEFAULTS",
    "LogFormat",
    "LogLevel",
    "OperatorSettings",
    "default_image",
]

LogFormat = Literal["json", "text"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

Port = Annotated[int, Field(ge=1, le=65535)]


def _sized(cpu: str, memory: str, memory_limit: str) -> PodOverrides:
    return PodOverrides(
        resources=ResourceRequirements(
            requests={"cpu": cpu, "memory": memory}, limits={"memory": memory_limit}
        )
    )


WORKLOAD_DEFAULTS: dict[str, PodOverrides] = {
    # No CPU limits: a throttled trainer or server is slower for nothing when the node is idle;
    # memory limits keep one runaway pod from taking its neighbours' memory.
    "trainer": _sized("100m", "512Mi", "4Gi"),
    "validator": _sized("100m", "256Mi", "2Gi"),
    "audit": _sized("50m", "64Mi", "256Mi"),
    "server": _sized("100m", "256Mi", "2Gi"),
}
"""The operator's own pod defaults per workload (the chart's ``workloads`` values say the same)."""


PROJECT_IMAGE_PREFIX = f"{DEFAULT_IMAGE_REPO}/"
"""The repository prefix of the project's own images (`default_image`)."""


def default_image(component: str) -> str:
    """The image this release of the project publishes for `component` (operator, trainer, server).

    The repository a release process pushes to (`make images IMAGE_REPO=...` builds them under
    any other name); the local cluster's node runs any ``*/mlops-operator/<component>``.
    """
    return f"{PROJECT_IMAGE_PREFIX}{component}:{__version__}"


class OperatorSettings(BaseSettings):
    """Everything the operator process is configured with."""

    model_config = SettingsConfigDict(env_prefix="MLOPS_", frozen=True, extra="ignore")

    kubeconfig: Path | None = Field(
        default=None,
        description="This kubeconfig file alone; unset: KUBECONFIG's files merged as kubectl"
        " merges them, else ~/.kube/config, else (in a pod) the pod's ServiceAccount.",
    )
    kube_context: str | None = Field(
        default=None,
        description="The kubeconfig context to run as; unset: its current-context.",
    )
    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces to watch (comma-separated in MLOPS_NAMESPACES); empty: cluster-wide.",
    )
    artifact_pvc: str = Field(
        default="mlops-artifacts",
        min_length=1,
        description="PersistentVolumeClaim holding the artifact store, mounted at"
        " /var/lib/mlops/artifacts in training, validation and serving pods; created in a"
        " namespace when missing (never deleted). Unused when artifact_uri is set.",
    )
    artifact_uri: str | None = Field(
        default=None,
        description="An object-store root for artifacts (s3://bucket/prefix); when set, pods use"
        " it directly and no PersistentVolumeClaim is mounted.",
    )
    artifact_credentials_secret: str | None = Field(
        default=None,
        description="With artifact_uri: a Secret, in each namespace that runs workloads, whose"
        " keys become the environment of trainer, validator, server and audit pods"
        " (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL for an S3-compatible"
        " server). Unset: the pods' own identity (workload identity).",
    )
    artifact_pvc_size: str = Field(
        default="10Gi", description="Storage requested when the operator creates the claim."
    )
    artifact_storage_class: str | None = Field(
        default=None,
        description="StorageClass of a claim the operator creates; unset: the cluster's default.",
    )
    job_ttl_seconds: int = Field(
        default=3600,
        ge=0,
        description="How long a finished trainer Job (and its pod and logs) is kept once its"
        " outcome is recorded in the TrainingJob's status, which stays.",
    )
    max_concurrent_reconciles: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Reconciles (of all kinds) that run at once; the rest wait their turn in"
        " arrival order. Bounds the operator's memory and API connections in a burst (1,000"
        " objects created at once), as controller-runtime's MaxConcurrentReconciles does.",
    )
    watch_server_timeout: int = Field(
        default=300,
        gt=0,
        description="Seconds after which the API server ends a watch (Kopf re-opens it from the"
        " last resource version); client-go picks 5-10 minutes at random.",
    )
    watch_client_timeout: int = Field(
        default=330,
        gt=0,
        description="Seconds after which the operator abandons a watch request whatever it"
        " receives; above watch_server_timeout, so it only fires when that end never arrives.",
    )
    watch_inactivity_timeout: int = Field(
        default=70,
        gt=0,
        description="Seconds a watch may go without any event before it is taken for dead and"
        " re-opened. The API server sends every watch a bookmark about once a minute, so a"
        " connection silently dropped (a NAT or load-balancer entry lost) is noticed within"
        " this, and a healthy idle watch is not re-opened; below 60 s idle watches are"
        " re-opened every so many seconds. client-go notices within ~45 s (HTTP/2 pings).",
    )
    api_request_timeout: int = Field(
        default=60,
        gt=0,
        description="Seconds an API request other than a watch may take (Kopf's and the"
        " handlers'); the API server itself gives up on a request after 60 s.",
    )
    api_connect_timeout: int = Field(
        default=30,
        gt=0,
        description="Seconds to open a connection to the API server (TCP and TLS).",
    )
    prometheus_url: str | None = Field(
        default=None,
        description="Prometheus server queried for rollout analysis and rollback floors; unset: "
        "the serving pods' /metrics are scraped directly.",
    )
    prometheus_allowed_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Prometheus base URLs a DriftPolicy's spec.prometheus.url may name"
        " (comma-separated in MLOPS_PROMETHEUS_ALLOWED_URLS), besides prometheus_url itself; a"
        " policy naming any other URL is refused and nothing is fetched from it.",
    )
    allowed_image_prefixes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [PROJECT_IMAGE_PREFIX],
        description="Image prefixes a TrainingJob's spec.image may start with (comma-separated"
        " in MLOPS_ALLOWED_IMAGE_PREFIXES); default: the project's own images. End a prefix"
        " with `/` or `:` so that it cannot match a longer repository name.",
    )
    fetch_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=300,
        description="Longest any outbound request of the operator (a Prometheus query, a"
        " scrape of a serving pod) may take; a DriftPolicy's own timeout is capped by it.",
    )
    fetch_max_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="Largest response body the operator reads from Prometheus or a serving"
        " pod; a longer one fails the request.",
    )
    operator_image: str = Field(default_factory=lambda: default_image("operator"))
    trainer_image: str = Field(default_factory=lambda: default_image("trainer"))
    server_image: str = Field(default_factory=lambda: default_image("server"))
    server_grpc_port: int = Field(
        default=9000,
        ge=0,
        le=65535,
        description="gRPC port of the inference servers of ModelDeployments that set no"
        " `server.grpcPort`; 0: no gRPC endpoint.",
    )
    bind_address: str = Field(
        default="0.0.0.0",
        description="Address the liveness and metrics endpoints listen on.",
    )
    liveness_port: Port = Field(default=8081, description="Port of GET /healthz (Kopf's probe).")
    metrics_port: Port = Field(default=8080, description="Port of GET /metrics (Prometheus).")
    log_format: LogFormat = "json"
    log_level: LogLevel = "INFO"
    trainer_pod: PodOverrides = Field(
        default_factory=lambda: WORKLOAD_DEFAULTS["trainer"],
        description="Defaults of every trainer pod (JSON in MLOPS_TRAINER_POD): resources,"
        " placement, service account, env, volumes; a TrainingJob's podOverrides go over them.",
    )
    validator_pod: PodOverrides = Field(
        default_factory=lambda: WORKLOAD_DEFAULTS["validator"],
        description="Defaults of every validation pod (MLOPS_VALIDATOR_POD).",
    )
    audit_pod: PodOverrides = Field(
        default_factory=lambda: WORKLOAD_DEFAULTS["audit"],
        description="Defaults of every audit pod (MLOPS_AUDIT_POD).",
    )
    server_pod: PodOverrides = Field(
        default_factory=lambda: WORKLOAD_DEFAULTS["server"],
        description="Defaults of every inference server pod (MLOPS_SERVER_POD); a"
        " ModelDeployment's podOverrides go over them.",
    )
    workload_security_context: WorkloadSecurityContext = Field(
        default_factory=WorkloadSecurityContext,
        description="The runAsUser, runAsGroup and fsGroup of every pod the operator starts (JSON"
        ' in MLOPS_WORKLOAD_SECURITY_CONTEXT, e.g. {"runAsUser": null, "runAsGroup": null,'
        f' "fsGroup": null}}); each defaults to the images\' user {IMAGE_USER}, and null leaves'
        " it out of the pods for the platform to assign (OpenShift's restricted-v2).",
    )
    peering: str | None = Field(
        default=None,
        description="Name of a KopfPeering to announce this operator in (Kopf's peering pauses"
        " operators of lower priority); none: standalone. Replicas of one release coordinate"
        " through leader election instead.",
    )
    leader_election: bool = Field(
        default=False,
        description="Run Kopf only while holding the coordination Lease `leader_election_lease`"
        " in `leader_election_namespace`; other replicas wait as standbys and take over when the"
        " holder stops renewing. Needs get/create/patch on that Lease.",
    )
    leader_election_lease: str = Field(
        default="mlops-operator",
        min_length=1,
        max_length=253,
        description="Name of the Lease the replicas compete for.",
    )
    leader_election_namespace: str | None = Field(
        default=None,
        description="Namespace of the Lease; unset: the pod's own (POD_NAMESPACE, else the"
        " service account's namespace file).",
    )
    leader_election_lease_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How long a standby waits after the holder's last renewal before taking"
        " over (client-go's LeaseDuration).",
    )
    leader_election_renew_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How long the holder keeps trying to renew before it stops acting and exits"
        " (client-go's RenewDeadline); below the lease duration, so it stops before anyone may"
        " take over.",
    )
    leader_election_retry_seconds: float = Field(
        default=2.0,
        gt=0,
        description="Interval of renewals and of a standby's attempts (client-go's RetryPeriod).",
    )

    @field_validator(
        "namespaces", "prometheus_allowed_urls", "allowed_image_prefixes", mode="before"
    )
    @classmethod
    def _split_lists(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @model_validator(mode="after")
    def _pods_keep_the_contract(self) -> OperatorSettings:
        problems = [
            f"{name}: {problem}"
            for name in ("trainer_pod", "validator_pod", "audit_pod", "server_pod")
            for problem in contract_problems(getattr(self, name))
        ]
        if problems:
            raise ValueError("pod defaults step on the pods' contract: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _distinct_ports(self) -> OperatorSettings:
        if self.liveness_port == self.metrics_port:
            raise ValueError(
                f"liveness_port and metrics_port are both {self.metrics_port}; "
                "the probe and the metrics endpoint need a port each"
            )
        return self

    @model_validator(mode="after")
    def _watch_ends_server_side_first(self) -> OperatorSettings:
        if self.watch_client_timeout <= self.watch_server_timeout:
            raise ValueError(
                f"watch_client_timeout ({self.watch_client_timeout}) must exceed"
                f" watch_server_timeout ({self.watch_server_timeout}): the client's limit is"
                " for a watch whose server-side end never arrives"
            )
        return self

    @model_validator(mode="after")
    def _lease_timing_ordered(self) -> OperatorSettings:
        retry, renew = self.leader_election_retry_seconds, self.leader_election_renew_seconds
        lease = self.leader_election_lease_seconds
        if not retry < renew < lease:
            raise ValueError(
                f"leader election needs retry ({retry}) < renew ({renew}) < lease ({lease})"
                " seconds: the holder must give up before a standby may take over"
            )
        return self

    @property
    def allowed_prometheus_urls(self) -> list[str]:
        """Every Prometheus URL a DriftPolicy may name: the platform's and the allow-list."""
        urls = [self.prometheus_url, *self.prometheus_allowed_urls]
        return list(dict.fromkeys(url.rstrip("/") for url in urls if url))

    @property
    def clusterwide(self) -> bool:
        """Whether the operator watches every namespace."""
        return not self.namespaces
