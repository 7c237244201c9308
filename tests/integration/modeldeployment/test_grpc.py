"""The Open Inference Protocol over gRPC through a ModelDeployment's Service, on the local cluster.

Aspects: ``spec.server.grpcPort`` reaches the serving pod (a ``grpc`` container port) and
the Service (a ``grpc`` port, h2c); a gRPC client going through the Service's cluster IP
gets readiness, the model's metadata and the card's parity sample from ModelInfer.
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc

from mlops_operator.serving.oip import grpc_predict_v2_pb2 as pb
from tests.integration.modeldeployment.conftest import model_version, train_into
from tests.integration.modeldeployment.traffic import wait_until_routed
from tests.integration.operator.conftest import RunningOperator
from tests.kube import get_json, kubectl

GRPC_PORT = 9100


def test_grpc_through_the_service(
    kubeconfig: Path, restricted: str, store: Path, operator: RunningOperator
) -> None:
    ns = restricted
    key, card = train_into(store, "iris", "LogisticRegression", {"C": 1.0, "max_iter": 500})
    kubectl(kubeconfig, "-n", ns, "apply", "-f", "-",
            stdin=json.dumps(model_version("iris-v1", "iris", 1, key, card)))  # fmt: skip
    mdep = {
        "apiVersion": "mlops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris"},
        "spec": {"modelName": "iris", "server": {"grpcPort": GRPC_PORT}},
    }
    kubectl(kubeconfig, "-n", ns, "apply", "-f", "-", stdin=json.dumps(mdep))
    kubectl(kubeconfig, "-n", ns, "wait", "--for=condition=Ready", "mdep/iris",
            "--timeout=240s", timeout=260)  # fmt: skip
    service = get_json(kubeconfig, "-n", ns, "service", "iris")["spec"]
    ports = {p["name"]: p for p in service["ports"]}
    assert ports["grpc"]["port"] == GRPC_PORT
    assert ports["grpc"]["appProtocol"] == "kubernetes.io/h2c"
    pods = get_json(kubeconfig, "-n", ns, "pods", "-l", "mlops.dev/version=1")["items"]
    container = pods[0]["spec"]["containers"][0]
    assert {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"} in container["ports"]

    rows = card.parity.sample_inputs
    request = pb.ModelInferRequest(model_name="iris", model_version="1")
    name = card.signature.inputs[0].name
    tensor = request.inputs.add(name=name, datatype="FP32", shape=[len(rows), len(rows[0])])
    tensor.contents.fp32_contents.extend(v for row in rows for v in row)
    # The pods are Ready; the Service's rules (both ports) follow at kube-proxy's next sync.
    wait_until_routed(f"http://{service['clusterIP']}:80")
    with grpc.insecure_channel(f"{service['clusterIP']}:{GRPC_PORT}") as channel:

        def rpc(method: str, message: object, reply: type) -> object:
            stub = channel.unary_unary(
                f"/inference.GRPCInferenceService/{method}",
                request_serializer=type(message).SerializeToString,
                response_deserializer=reply.FromString,  # type: ignore[attr-defined]
            )
            return stub(message, timeout=30)

        ready = rpc("ServerReady", pb.ServerReadyRequest(), pb.ServerReadyResponse)
        assert ready.ready  # type: ignore[attr-defined]
        metadata = rpc(
            "ModelMetadata", pb.ModelMetadataRequest(name="iris"), pb.ModelMetadataResponse
        )
        assert list(metadata.versions) == ["1"]  # type: ignore[attr-defined]
        answer = rpc("ModelInfer", request, pb.ModelInferResponse)
    labels = [str(v) for v in answer.outputs[0].contents.int64_contents]  # type: ignore[attr-defined]
    assert labels == card.parity.sample_outputs
