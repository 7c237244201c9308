"""The serving container's interface: every knob of the inference server, from ``MLOPS_*`` env vars.

The operator's Deployment builder renders this class into env vars and the
server reads them back, so the container interface is defined once.
``mlops serve`` flags map onto the same fields.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops_operator.podcontract import ENV_PREFIX

__all__ = ["ServingSettings"]


class ServingSettings(BaseSettings):
    """Configuration of the inference server (env prefix ``MLOPS_``)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    model_dir: str = Field(
        description="Directory or fsspec URI holding model.onnx and model-card.json."
    )
    expected_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="The sha256 the ModelVersion registers for the artifact: the server refuses"
        " any other bytes, whatever the model card beside them says.",
    )
    termination_message_path: Path | None = Field(
        default=None,
        description="Where a refusal to start is written for Kubernetes to report (the pod's"
        " terminationMessagePath).",
    )
    feedback_token: SecretStr | None = Field(
        default=None,
        description="When set, /feedback answers only requests that carry"
        " `Authorization: Bearer <token>` (from the ModelDeployment's Secret).",
    )
    model_name: str | None = Field(
        default=None, description="Name served under /v2/models/{name}; default: the card's."
    )
    model_version: str | None = Field(
        default=None,
        description="Version reported on every response and metric; default: sha256 prefix.",
    )
    host: str = Field(default="0.0.0.0", description="Address to listen on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port to listen on.")
    grpc_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description=(
            "Port of the Open Inference Protocol over gRPC (KServe's GRPCInferenceService);"
            " unset: no gRPC endpoint."
        ),
    )
    workers: int = Field(
        default=0, ge=0, description="Worker processes sharing the port; 0 = one per whole CPU."
    )
    intra_op_threads: int = Field(
        default=0, ge=0, description="onnxruntime threads per worker; 0 = CPU limit / workers."
    )
    cpu_limit: float | None = Field(
        default=None, gt=0, description="CPUs available; default: read from the cgroup."
    )
    max_batch_rows: int = Field(
        default=256, ge=1, description="Most rows merged into one onnxruntime call."
    )
    batch_delay_ms: float = Field(
        default=0.0,
        ge=0,
        description="How long a batch waits for more requests; 0 takes whatever is queued.",
    )
    observe_delay_ms: float = Field(
        default=50.0,
        gt=0,
        description=(
            "Longest a served call waits to be counted (drift bins, rows, the prediction log):"
            " calls are counted together, at this delay or at 256 rows; a /metrics scrape"
            " counts the worker's calls first."
        ),
    )
    offload_inference: bool | None = Field(
        default=None,
        description=(
            "Run onnxruntime in a thread so the event loop keeps parsing meanwhile; unset: only"
            " when a one-row call takes over 100 µs (a cheaper model runs faster on the loop"
            " than a thread hand-over costs)."
        ),
    )
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1, description="Largest request body.")
    max_rows: int = Field(default=10_000, ge=1, description="Most rows in one request.")
    labels_uri: str | None = Field(
        default=None,
        description="Directory or fsspec URI of the deployment's prediction and label logs"
        " (every prediction is recorded there; /feedback labels join them); off when unset.",
    )
    labels_key: SecretStr | None = Field(
        default=None,
        description="Key that signs request ids, shared by every replica (a Secret); default:"
        " a random key per server process, so labels survive worker changes but not restarts.",
    )
    label_retention_seconds: float = Field(
        default=7 * 24 * 3600,
        gt=0,
        description="How long after a prediction its labels are accepted (410 Gone after).",
    )
    shadow_url: str | None = Field(
        default=None, description="Base URL that receives a fire-and-forget copy of each request."
    )
    shadow_queue_size: int = Field(default=1024, ge=1, description="Mirror backlog before drops.")
    shadow_percent: int = Field(
        default=100, ge=1, le=100, description="Percent of the requests mirrored to shadow_url."
    )
    canary_url: str | None = Field(
        default=None,
        description="Base URL of a canary server that answers canary_percent of the requests.",
    )
    canary_percent: int = Field(
        default=0, ge=0, le=100, description="Percent of the requests forwarded to canary_url."
    )
    timeout_ms: int = Field(
        default=0,
        ge=0,
        description="Deadline of a request, from its arrival to its answer (HTTP 504 past it);"
        " 0: none.",
    )
    payload_log_uri: str | None = Field(
        default=None, description="Directory or fsspec URI for sampled JSON-lines payload logs."
    )
    payload_log_sample_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of requests logged."
    )
    payload_log_max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1, description="Most bytes one worker logs in its lifetime."
    )
    drain_seconds: float = Field(
        default=0.0,
        ge=0,
        description=(
            "After SIGTERM, how long to keep serving while reporting not ready (so endpoints "
            "are removed) before the listener closes."
        ),
    )
    shutdown_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Most time in-flight requests get to finish on shutdown."
    )
    log_level: str = Field(default="INFO", description="Python logging level.")
