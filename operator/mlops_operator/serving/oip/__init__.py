"""The Open Inference Protocol's gRPC messages, generated from grpc_predict_v2.proto (`make protos`)."""
