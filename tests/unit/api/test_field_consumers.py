"""Every spec field of the four kinds has a consumer and a test: no field is accepted and ignored.

The registry below names, for each field of every model reachable from the four
specs (keyed by the class that declares it, so shared types are listed once), the
module that acts on it and a test that fails when it is ignored. A field passed on
as part of its parent (a toleration's key, a volume's source) says so (`WHOLE`); its
parent must then have a consumer. The test walks the models: a new field without an
entry fails it, and so do an entry for a field that is gone, a consumer module that
never reads the field, and a test that does not exist.
"""

from __future__ import annotations

import ast
import re
import types
import typing
from functools import cache
from pathlib import Path

import pytest
from pydantic import BaseModel

from mlops_operator.api import KINDS
from mlops_operator.api.pods import VOLUME_SOURCES

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "operator" / "mlops_operator"
WHOLE = "whole"
"""Consumed as part of its parent object (see the module docstring)."""
ONE_VALUE = "one value"
"""A field whose schema admits a single value: it states a fact no one can change (checked)."""

# Fields another developer's branch implements (issue 16, split between branches).
ELSEWHERE: dict[str, str] = {}

UT, IT = "tests/unit", "tests/integration"
RESOURCES_TJ = f"{UT}/resources/test_trainingjob.py"
RECIPE_ENV = f"{RESOURCES_TJ}::test_the_environment_reads_back_as_the_settings_the_spec_implies"
MV_RECORD = f"{RESOURCES_TJ}::test_the_model_version_records_artifact_signature_metrics_and_lineage"
TRAINED = (
    f"{IT}/trainingjob/test_trainingjob.py::test_iris_trains_into_a_version_matching_its_model_card"
)
PODS = f"{UT}/resources/test_pods.py::test_layers_merge_in_order"
PODS_REAL = f"{IT}/trainingjob/test_pod_overrides.py::test_overrides_reach_the_trainer_validator_and_server_pods"
RESOURCES = (
    f"{UT}/resources/test_pods.py::test_resources_merge_per_resource_and_keep_requests_under_limits"
)
GATES = f"{UT}/decisions/test_gates.py"
ANALYSIS = f"{UT}/decisions/test_analysis.py"
ROLLOUT = f"{UT}/decisions/test_rollout.py"
DRIFT = f"{UT}/decisions/test_drift.py"
MEASURE = f"{UT}/decisions/test_triggers.py"
SERVING = f"{UT}/resources/test_modeldeployment.py::test_the_server_env_renders_its_settings_class"
REPRODUCE = (
    f"{UT}/test_reproduce.py::test_the_lineage_gives_back_the_trainer_settings_of_the_training_job"
)
VALIDATE = f"{UT}/validator/test_validate.py"
SOURCES = (
    f"{UT}/trainer/test_sources.py::test_two_sources_are_combined_and_each_keeps_its_data_version"
)
REBUILT = (
    f"{UT}/trainer/test_sources.py::test_reproduce_rebuilds_a_combination_from_the_snapshots_alone"
)
EVALUATOR = f"{UT}/evaluator/test_evaluator.py"
LABELS_WIRED = f"{UT}/resources/test_labels_wiring.py::test_feedback_gives_every_server_the_labels_root_the_retention_and_the_secret_key"
ESTIMATED = f"{MEASURE}::test_estimated_accuracy_reads_cbpe_before_labels"
# The server reads the token from the Secret itself (the operator never sees it).
FEEDBACK_TOKEN = f"{UT}/resources/test_modeldeployment.py::test_the_feedback_token_comes_from_the_secret_never_through_the_operator"

REGISTRY: dict[str, tuple[str, str]] = {
    # TrainingJob and the DriftPolicy's retrain template (the shared recipe).
    "_TrainingRecipe.modelName": ("resources.trainingjob", RECIPE_ENV),
    "_TrainingRecipe.target": ("resources.trainingjob", RECIPE_ENV),
    "_TrainingRecipe.features": ("resources.trainingjob", RECIPE_ENV),
    "_TrainingRecipe.categoricalFeatures": (
        "resources.trainingjob",
        f"{UT}/trainer/test_preprocessing.py::test_without_categorical_features_the_text_columns_are_one_hot_encoded",
    ),
    "_TrainingRecipe.task": (
        "resources.trainingjob",
        f"{RESOURCES_TJ}::test_the_primary_metric_follows_the_champion_comparison",
    ),
    "_TrainingRecipe.estimator": ("resources.trainingjob", RECIPE_ENV),
    "Estimator.name": (
        "resources.trainingjob",
        f"{UT}/api/test_catalogues.py::test_the_crd_estimator_enum_equals_the_trainer_allow_list",
    ),
    "Estimator.params": (
        "resources.trainingjob",
        f"{UT}/trainer/test_bad_inputs.py::test_a_parameter_the_estimator_does_not_take",
    ),
    "_TrainingRecipe.seed": (
        "resources.trainingjob",
        f"{UT}/trainer/test_determinism.py::test_another_seed_gives_another_model",
    ),
    "_TrainingRecipe.testSize": ("resources.trainingjob", RECIPE_ENV),
    "_TrainingRecipe.cvFolds": (
        "resources.trainingjob",
        f"{UT}/trainer/test_training.py::test_cross_validation_adds_mean_and_spread_of_each_metric",
    ),
    "_TrainingRecipe.preprocessing": (
        "resources.trainingjob",
        f"{RESOURCES_TJ}::test_preprocessing_reaches_the_trainer",
    ),
    "Preprocessing.scaleNumeric": (
        "resources.trainingjob",
        f"{UT}/trainer/test_preprocessing.py::test_scaling_asked_for_or_refused_explicitly",
    ),
    "Preprocessing.impute": (
        "resources.trainingjob",
        f"{RESOURCES_TJ}::test_preprocessing_reaches_the_trainer",
    ),
    "Imputation.numeric": (
        "resources.trainingjob",
        f"{UT}/trainer/test_preprocessing.py::test_a_missing_number_is_filled_with_the_chosen_statistic",
    ),
    "Imputation.categorical": (
        "resources.trainingjob",
        f"{UT}/trainer/test_preprocessing.py::test_a_missing_category_becomes_a_category_of_its_own_with_constant",
    ),
    "_TrainingRecipe.resources": (
        "resources.trainingjob",
        f"{UT}/resources/test_pods.py::test_each_workload_takes_its_defaults_then_the_objects_overrides",
    ),
    "_TrainingRecipe.podOverrides": ("resources.trainingjob", PODS_REAL),
    "_TrainingRecipe.validatorPodOverrides": ("resources.trainingjob", PODS_REAL),
    "_TrainingRecipe.activeDeadlineSeconds": (
        "resources.trainingjob",
        f"{RESOURCES_TJ}::test_the_job_carries_retries_deadline_suspend_and_no_ttl_yet",
    ),
    "_TrainingRecipe.backoffLimit": (
        "resources.trainingjob",
        f"{RESOURCES_TJ}::test_the_job_carries_retries_deadline_suspend_and_no_ttl_yet",
    ),
    "_TrainingRecipe.ttlSecondsAfterFinished": ("handlers.trainingjob", TRAINED),
    "_TrainingRecipe.image": (
        "handlers.trainingjob",
        f"{RESOURCES_TJ}::test_the_job_is_named_after_and_owned_by_the_training_job",
    ),
    "_TrainingRecipe.suspend": (
        "resources.trainingjob",
        f"{IT}/trainingjob/test_trainingjob.py::test_a_suspended_training_job_waits_and_then_runs",
    ),
    "_TrainingRecipe.targetDeployment": ("resources.trainingjob", TRAINED),
    "_TrainingRecipe.gates": ("resources.trainingjob", TRAINED),
    "TrainingJobSpec.dataset": ("resources.trainingjob", RECIPE_ENV),
    "TrainingJobSpec.parentVersion": (
        "resources.trainingjob",
        f"{RESOURCES_TJ}::test_a_retrained_version_records_its_parent",
    ),
    "TrainingJobTemplate.dataset": (
        "resources.retraining",
        f"{UT}/resources/test_retraining.py::test_the_whole_manifest",
    ),
    "_DataLocation.uri": ("resources.trainingjob", RECIPE_ENV),
    "_DataLocation.pvc": (
        "resources.trainingjob",
        f"{RESOURCES_TJ}::test_a_dataset_on_a_claim_is_mounted_read_only",
    ),
    "PvcSource.claimName": (
        "resources.trainingjob",
        f"{RESOURCES_TJ}::test_a_dataset_on_a_claim_is_mounted_read_only",
    ),
    "PvcSource.path": (
        "resources.trainingjob",
        f"{RESOURCES_TJ}::test_a_dataset_on_a_claim_is_mounted_read_only",
    ),
    "_DataLocation.fromPayloadLog": (
        "resources.trainingjob",
        f"{UT}/resources/test_payload_log_wiring.py::test_a_training_job_from_the_payload_log_reads_that_folder",
    ),
    "PayloadLogSource.deployment": (
        "resources.trainingjob",
        f"{UT}/resources/test_payload_log_wiring.py::test_a_training_job_from_the_payload_log_reads_that_folder",
    ),
    "PayloadLogSource.window": (
        "resources.trainingjob",
        f"{UT}/trainer/test_payload_log.py::test_the_window_keeps_recent_requests_and_skips_old_day_folders",
    ),
    "PayloadLogSource.minRows": (
        "resources.trainingjob",
        f"{UT}/trainer/test_payload_log.py::test_too_few_labelled_rows_is_dataset_not_found_with_the_count",
    ),
    "_DataLocation.format": (
        "resources.trainingjob",
        f"{UT}/trainer/test_sources.py::test_the_format_overrides_the_extension",
    ),
    "Dataset.sources": ("resources.trainingjob", SOURCES),
    "DatasetSource.sample": ("resources.trainingjob", SOURCES),
    "Dataset.credentialsSecret": (
        "resources.trainingjob",
        f"{RESOURCES_TJ}::test_credentials_come_from_the_named_secret",
    ),
    # Pod overrides (every workload).
    "PodOverrides.labels": ("resources.pods", PODS),
    "PodOverrides.annotations": ("resources.pods", PODS),
    "PodOverrides.resources": ("resources.pods", RESOURCES),
    "ResourceRequirements.requests": ("resources.pods", RESOURCES),
    "ResourceRequirements.limits": ("resources.pods", RESOURCES),
    "PodOverrides.nodeSelector": ("resources.pods", PODS_REAL),
    "PodOverrides.tolerations": ("resources.pods", PODS_REAL),
    "Toleration.key": (WHOLE, PODS),
    "Toleration.operator": (WHOLE, PODS),
    "Toleration.value": (WHOLE, PODS),
    "Toleration.effect": (WHOLE, PODS_REAL),
    "Toleration.tolerationSeconds": (WHOLE, PODS),
    "PodOverrides.affinity": ("resources.pods", PODS),
    "PodOverrides.priorityClassName": ("resources.pods", PODS),
    "PodOverrides.serviceAccountName": ("resources.pods", PODS),
    "PodOverrides.imagePullSecrets": ("resources.pods", PODS),
    "LocalObjectReference.name": (WHOLE, PODS),
    "PodOverrides.env": ("resources.pods", PODS_REAL),
    "EnvVar.name": (WHOLE, PODS),
    "EnvVar.value": (WHOLE, PODS),
    "EnvVar.valueFrom": (WHOLE, PODS),
    "PodOverrides.volumes": ("resources.pods", PODS),
    **{f"Volume.{field}": (WHOLE, PODS) for field in ("name", *VOLUME_SOURCES)},
    "PodOverrides.volumeMounts": ("resources.pods", PODS),
    **{f"VolumeMount.{f}": (WHOLE, PODS) for f in ("name", "mountPath", "readOnly", "subPath")},
    # Gates (TrainingJob, ModelVersion, ModelDeployment).
    "Gates.metrics": (
        "decisions.gates",
        f"{GATES}::test_evaluate_gates_lists_checks_thresholds_then_champions",
    ),
    "MetricGate.metric": (
        "decisions.gates",
        f"{GATES}::test_a_missing_metric_fails_and_names_what_exists",
    ),
    "MetricGate.op": ("decisions.gates", f"{GATES}::test_metric_gates_compare_with_their_operator"),
    "MetricGate.threshold": (
        "decisions.gates",
        f"{GATES}::test_metric_gates_compare_with_their_operator",
    ),
    "Gates.compareToChampion": (
        "decisions.gates",
        f"{GATES}::test_champion_comparison_higher_is_better",
    ),
    "ChampionComparison.metric": (
        "decisions.gates",
        f"{GATES}::test_champion_comparison_higher_is_better",
    ),
    "ChampionComparison.higherIsBetter": (
        "decisions.gates",
        f"{GATES}::test_champion_comparison_lower_is_better",
    ),
    "ChampionComparison.maxRegression": (
        "decisions.gates",
        f"{GATES}::test_champion_comparison_higher_is_better",
    ),
    "MaxRegression.absolute": (
        "decisions.gates",
        f"{GATES}::test_champion_comparison_higher_is_better",
    ),
    "MaxRegression.relative": (
        "decisions.gates",
        f"{GATES}::test_champion_comparison_lower_is_better",
    ),
    "ChampionComparison.deployment": (
        "decisions.gates",
        f"{GATES}::test_a_version_is_validated_against_the_gates_of_each_deployment_that_may_serve_it",
    ),
    "Gates.requireApproval": (
        "decisions.gates",
        f"{GATES}::test_approval_holds_a_passing_version_until_given",
    ),
    # ModelVersion: a record the operator writes; what reads each part.
    "ModelVersionSpec.modelName": (
        "handlers.modeldeployment",
        f"{ROLLOUT}::test_first_version_is_deployed_at_once",
    ),
    "ModelVersionSpec.version": (
        "handlers.modeldeployment",
        f"{ROLLOUT}::test_canary_walks_every_step_then_promotes",
    ),
    "ModelVersionSpec.artifact": (
        "resources.validation",
        f"{UT}/resources/test_modeldeployment.py::test_validation_job_carries_the_checks_inputs",
    ),
    "Artifact.uri": (
        "resources.validation",
        f"{UT}/resources/test_modeldeployment.py::test_validation_job_carries_the_checks_inputs",
    ),
    "Artifact.sha256": (
        "resources.validation",
        f"{VALIDATE}::test_a_checksum_other_than_recorded_is_refused",
    ),
    "Artifact.sizeBytes": (
        "resources.validation",
        f"{VALIDATE}::test_the_recorded_size_and_opset_are_checked",
    ),
    "Artifact.opset": (
        "resources.validation",
        f"{VALIDATE}::test_the_recorded_size_and_opset_are_checked",
    ),
    "Artifact.format": (
        ONE_VALUE,
        f"{UT}/serving/test_loading.py::test_bytes_that_are_not_onnx_are_refused",
    ),
    "ModelVersionSpec.signature": (
        "resources.validation",
        f"{VALIDATE}::test_a_signature_other_than_recorded_is_refused",
    ),
    "SignatureSummary.task": ("cli.reproduce", REPRODUCE),
    "SignatureSummary.features": (
        "resources.validation",
        f"{VALIDATE}::test_a_signature_other_than_recorded_is_refused",
    ),
    "FeatureSummary.name": (
        "resources.validation",
        f"{VALIDATE}::test_a_signature_other_than_recorded_is_refused",
    ),
    "FeatureSummary.kind": ("resources.trainingjob", MV_RECORD),
    "SignatureSummary.classes": (
        "resources.validation",
        f"{VALIDATE}::test_a_signature_other_than_recorded_is_refused",
    ),
    "SignatureSummary.inputs": ("resources.trainingjob", MV_RECORD),
    "SignatureSummary.outputs": ("resources.trainingjob", MV_RECORD),
    "TensorSummary.name": (WHOLE, MV_RECORD),
    "TensorSummary.dtype": (WHOLE, MV_RECORD),
    "TensorSummary.shape": (WHOLE, MV_RECORD),
    "ModelVersionSpec.metrics": (
        "handlers.modeldeployment",
        f"{GATES}::test_metric_gates_compare_with_their_operator",
    ),
    "ModelVersionSpec.primaryMetric": (
        "cli.views",
        f"{RESOURCES_TJ}::test_the_primary_metric_follows_the_champion_comparison",
    ),
    "PrimaryMetric.name": (
        WHOLE,
        f"{RESOURCES_TJ}::test_the_primary_metric_follows_the_champion_comparison",
    ),
    "PrimaryMetric.value": (
        WHOLE,
        f"{RESOURCES_TJ}::test_the_primary_metric_follows_the_champion_comparison",
    ),
    "ModelVersionSpec.lineage": ("cli.reproduce", REPRODUCE),
    "Lineage.dataset": ("cli.reproduce", REPRODUCE),
    "DatasetLineage.uri": (
        "cli.reproduce",
        f"{UT}/test_reproduce.py::test_a_replacement_dataset_is_used",
    ),
    "DatasetLineage.sha256": (
        "cli.reproduce",
        f"{UT}/test_reproduce.py::test_each_difference_is_flagged",
    ),
    "DatasetLineage.format": ("cli.reproduce", REBUILT),
    "DatasetLineage.sources": ("cli.reproduce", REBUILT),
    **{
        f"SourceLineage.{field}": (WHOLE, SOURCES)
        for field in ("uri", "sha256", "rows", "sample", "usedRows")
    },
    "DatasetLineage.rows": (WHOLE, MV_RECORD),
    "DatasetLineage.columns": (WHOLE, MV_RECORD),
    "Lineage.target": ("api.modelversion", REPRODUCE),
    "Lineage.estimator": ("api.modelversion", REPRODUCE),
    "Lineage.params": ("api.modelversion", REPRODUCE),
    "Lineage.features": ("api.modelversion", REPRODUCE),
    "Lineage.categoricalFeatures": ("api.modelversion", REPRODUCE),
    "Lineage.seed": ("api.modelversion", REPRODUCE),
    "Lineage.testSize": ("api.modelversion", REPRODUCE),
    "Lineage.cvFolds": ("api.modelversion", REPRODUCE),
    "Lineage.preprocessing": ("api.modelversion", REPRODUCE),
    "Lineage.image": ("cli.reproduce", MV_RECORD),
    "Lineage.codeVersion": (
        "resources.trainingjob",
        f"{UT}/trainer/test_code_version.py::test_the_trainer_records_the_commit",
    ),
    "Lineage.trainingJob": (
        "cli.views",
        f"{UT}/cli/test_views.py::test_lineage_json_carries_the_same_facts",
    ),
    "Lineage.parentVersion": (
        "cli.views",
        f"{UT}/cli/test_views.py::test_lineage_json_carries_the_same_facts",
    ),
    "Lineage.libraries": ("resources.trainingjob", TRAINED),
    "ModelVersionSpec.targetDeployment": (
        "decisions.gates",
        f"{GATES}::test_a_version_is_validated_against_the_gates_of_each_deployment_that_may_serve_it",
    ),
    "ModelVersionSpec.gates": (
        "decisions.gates",
        f"{GATES}::test_merge_keeps_every_threshold_and_any_approval",
    ),
    "ModelVersionSpec.validatorPodOverrides": (
        "resources.validation",
        f"{UT}/resources/test_pods.py::test_the_validator_gets_the_versions_overrides",
    ),
    # ModelDeployment.
    "ModelDeploymentSpec.modelName": (
        "handlers.modeldeployment",
        f"{ROLLOUT}::test_first_version_is_deployed_at_once",
    ),
    "ModelDeploymentSpec.promotion": (
        "decisions.rollout",
        f"{ROLLOUT}::test_manual_rollback_is_one_change_and_records_the_actor",
    ),
    "ModelDeploymentSpec.version": (
        "decisions.rollout",
        f"{ROLLOUT}::test_a_pin_changed_mid_canary_withdraws_the_challenger",
    ),
    "ModelDeploymentSpec.replicas": (
        "decisions.rollout",
        f"{ROLLOUT}::test_first_version_is_deployed_at_once",
    ),
    "ModelDeploymentSpec.resources": (
        "resources.modeldeployment",
        f"{UT}/resources/test_pods.py::test_each_workload_takes_its_defaults_then_the_objects_overrides",
    ),
    "ModelDeploymentSpec.podOverrides": ("resources.modeldeployment", PODS_REAL),
    "ModelDeploymentSpec.server": ("resources.modeldeployment", SERVING),
    "ServerSettings.maxBatchSize": ("resources.modeldeployment", SERVING),
    "ServerSettings.batchDelayMs": (
        "resources.modeldeployment",
        f"{UT}/serving/test_traffic_split.py::test_a_request_past_the_deadline_gets_a_504_and_the_server_keeps_serving",
    ),
    "ServerSettings.workers": ("resources.modeldeployment", SERVING),
    "ServerSettings.maxRows": (
        "resources.modeldeployment",
        f"{UT}/serving/test_validation.py::test_predict_refusals",
    ),
    "ServerSettings.grpcPort": (
        "resources.modeldeployment",
        f"{UT}/resources/test_modeldeployment.py::test_the_grpc_port_reaches_the_server_the_pod_and_the_services",
    ),
    "ServerSettings.timeoutMs": (
        "resources.modeldeployment",
        f"{UT}/serving/test_traffic_split.py::test_a_request_past_the_deadline_gets_a_504_and_the_server_keeps_serving",
    ),
    "ModelDeploymentSpec.rollout": (
        "decisions.rollout",
        f"{ROLLOUT}::test_canary_walks_every_step_then_promotes",
    ),
    "Rollout.strategy": ("decisions.rollout", f"{ROLLOUT}::test_shadow_mirrors_then_switches"),
    "Rollout.canary": (
        "decisions.rollout",
        f"{ROLLOUT}::test_canary_walks_every_step_then_promotes",
    ),
    "CanarySettings.steps": (
        "decisions.rollout",
        f"{ROLLOUT}::test_canary_walks_every_step_then_promotes",
    ),
    "CanaryStep.weight": (
        "decisions.rollout",
        f"{IT}/modeldeployment/test_canary_split.py::test_a_canary_at_weight_10_answers_10_percent_with_one_replica_each",
    ),
    "CanaryStep.pause": (
        "decisions.rollout",
        f"{ROLLOUT}::test_the_analysis_interval_sets_how_often_a_step_is_judged",
    ),
    "Rollout.shadow": ("decisions.rollout", f"{ROLLOUT}::test_shadow_mirrors_then_switches"),
    "ShadowSettings.mirrorPercent": (
        "handlers.modeldeployment",
        f"{UT}/serving/test_traffic_split.py::test_a_shadow_gets_exactly_its_percent",
    ),
    "ShadowSettings.duration": (
        "decisions.rollout",
        f"{ROLLOUT}::test_shadow_mirrors_then_switches",
    ),
    "Rollout.analysis": (
        "decisions.rollout",
        f"{ROLLOUT}::test_the_analysis_interval_sets_how_often_a_step_is_judged",
    ),
    "Analysis.interval": (
        "decisions.rollout",
        f"{ROLLOUT}::test_the_analysis_interval_sets_how_often_a_step_is_judged",
    ),
    "Analysis.minRequests": (
        "decisions.analysis",
        f"{ANALYSIS}::test_too_few_requests_is_inconclusive",
    ),
    "Analysis.failureLimit": (
        "decisions.rollout",
        f"{ROLLOUT}::test_failures_below_the_limit_open_a_new_window",
    ),
    "Analysis.maxErrorRate": (
        "decisions.analysis",
        f"{ANALYSIS}::test_each_limit_fails_with_its_evidence",
    ),
    "Analysis.maxP99LatencyMs": (
        "decisions.analysis",
        f"{ANALYSIS}::test_each_limit_fails_with_its_evidence",
    ),
    "Analysis.maxP99LatencyRatio": (
        "decisions.analysis",
        f"{ANALYSIS}::test_each_limit_fails_with_its_evidence",
    ),
    "Analysis.minAccuracy": (
        "decisions.analysis",
        f"{ANALYSIS}::test_live_accuracy_needs_enough_labels",
    ),
    "Analysis.maxPredictionPsi": (
        "decisions.analysis",
        f"{ANALYSIS}::test_agreement_and_prediction_psi_compare_distributions",
    ),
    "Rollout.autoRollback": (
        "decisions.rollout",
        f"{IT}/modeldeployment/test_rollout.py::test_canary_promotion_withdrawal_and_rollback",
    ),
    "ModelDeploymentSpec.rollbackFloors": (
        "handlers.modeldeployment",
        f"{ROLLOUT}::test_a_breached_floor_restores_the_previous_champion",
    ),
    "RollbackFloors.window": ("handlers.modeldeployment", f"{ANALYSIS}::test_floors"),
    "RollbackFloors.minRequests": ("decisions.analysis", f"{ANALYSIS}::test_floors"),
    "RollbackFloors.maxErrorRate": ("decisions.analysis", f"{ANALYSIS}::test_floors"),
    "RollbackFloors.maxP99LatencyMs": ("decisions.analysis", f"{ANALYSIS}::test_floors"),
    "RollbackFloors.minAccuracy": ("decisions.analysis", f"{ANALYSIS}::test_floors"),
    "ModelDeploymentSpec.gates": (
        "decisions.rollout",
        f"{GATES}::test_a_version_is_validated_against_the_gates_of_each_deployment_that_may_serve_it",
    ),
    "ModelDeploymentSpec.payloadLogging": (
        "resources.modeldeployment",
        f"{UT}/resources/test_payload_log_wiring.py::test_logging_on_writes_the_deployments_folder_only_the_store_stays_read_only",
    ),
    "PayloadLogging.enabled": (
        "resources.modeldeployment",
        f"{UT}/resources/test_payload_log_wiring.py::test_logging_on_writes_the_deployments_folder_only_the_store_stays_read_only",
    ),
    "PayloadLogging.sampleRate": (
        "resources.modeldeployment",
        f"{UT}/resources/test_payload_log_wiring.py::test_logging_on_writes_the_deployments_folder_only_the_store_stays_read_only",
    ),
    "PayloadLogging.uri": (
        "resources.modeldeployment",
        f"{UT}/resources/test_payload_log_wiring.py::test_logging_off_or_elsewhere_leaves_the_store_read_only",
    ),
    "ModelDeploymentSpec.monitoring": (
        "handlers.modeldeployment",
        f"{UT}/resources/test_modeldeployment.py::test_the_service_monitor_interval_is_one_prometheus_reads",
    ),
    "Monitoring.serviceMonitor": (
        "resources.modeldeployment",
        f"{UT}/resources/test_modeldeployment.py::test_the_service_monitor_interval_is_one_prometheus_reads",
    ),
    "ServiceMonitorSettings.enabled": (
        "handlers.modeldeployment",
        f"{UT}/resources/test_modeldeployment.py::test_the_service_monitor_interval_is_one_prometheus_reads",
    ),
    "ServiceMonitorSettings.interval": (
        "resources.modeldeployment",
        f"{UT}/resources/test_modeldeployment.py::test_the_service_monitor_interval_is_one_prometheus_reads",
    ),
    "ServiceMonitorSettings.labels": (
        "resources.modeldeployment",
        f"{UT}/resources/test_modeldeployment.py::test_the_service_monitor_interval_is_one_prometheus_reads",
    ),
    "ModelDeploymentSpec.feedback": ("resources.modeldeployment", LABELS_WIRED),
    "Feedback.window": (
        "resources.labels",
        f"{EVALUATOR}::test_a_window_is_judged_only_once_its_labels_arrived",
    ),
    "Feedback.minLabelCoverage": (
        "resources.labels",
        f"{EVALUATOR}::test_a_window_is_judged_only_once_its_labels_arrived",
    ),
    "Feedback.maxLabelDelay": (
        "resources.labels",
        f"{EVALUATOR}::test_windows_short_of_labels_expire_after_the_delay",
    ),
    "Feedback.retention": ("resources.labels", LABELS_WIRED),
    "Feedback.tokenSecret": ("resources.modeldeployment", FEEDBACK_TOKEN),
    "SecretKeyRef.name": ("resources.modeldeployment", FEEDBACK_TOKEN),
    "SecretKeyRef.key": ("resources.modeldeployment", FEEDBACK_TOKEN),
    "ModelDeploymentSpec.historyLimit": (
        "decisions.rollout",
        f"{ROLLOUT}::test_history_is_bounded_newest_first",
    ),
    # DriftPolicy.
    "DriftPolicySpec.deployment": (
        "handlers.driftpolicy_gather",
        f"{IT}/driftpolicy/test_driftpolicy.py::test_reference_traffic_never_retrains_and_one_drift_episode_retrains_once",
    ),
    "DriftPolicySpec.interval": (
        "api.driftpolicy",
        # Two evaluations of a 10 s interval within 90 s each time.
        f"{IT}/driftpolicy/test_driftpolicy.py::test_reference_traffic_never_retrains_and_one_drift_episode_retrains_once",
    ),
    "DriftPolicySpec.window": (
        "handlers.driftpolicy_gather",
        f"{IT}/driftpolicy/test_driftpolicy.py::test_scrape_fallback_and_prometheus_measure_the_same_psi",
    ),
    "DriftPolicySpec.triggers": (
        "handlers.driftpolicy_gather",
        f"{DRIFT}::test_no_breach_is_no_drift",
    ),
    "Triggers.featureDrift": (
        "decisions.triggers",
        f"{MEASURE}::test_feature_drift_is_the_share_of_drifted_features",
    ),
    "FeatureDriftTrigger.psiThreshold": (
        "decisions.triggers",
        f"{MEASURE}::test_feature_drift_is_the_share_of_drifted_features",
    ),
    "FeatureDriftTrigger.features": (
        "handlers.driftpolicy_gather",
        f"{MEASURE}::test_feature_drift_watches_only_the_listed_features",
    ),
    "FeatureDriftTrigger.minSamples": (
        "decisions.triggers",
        f"{DRIFT}::test_too_few_samples_is_not_judged_and_restarts_the_run",
    ),
    "FeatureDriftTrigger.minDriftedShare": (
        "decisions.triggers",
        f"{MEASURE}::test_feature_drift_is_the_share_of_drifted_features",
    ),
    "Triggers.predictionDrift": (
        "decisions.triggers",
        f"{MEASURE}::test_one_class_predictions_drift",
    ),
    "PredictionDriftTrigger.psiThreshold": (
        "decisions.triggers",
        f"{MEASURE}::test_one_class_predictions_drift",
    ),
    "PredictionDriftTrigger.minSamples": (
        "decisions.triggers",
        f"{DRIFT}::test_too_few_samples_is_not_judged_and_restarts_the_run",
    ),
    "Triggers.accuracy": (
        "decisions.triggers",
        f"{MEASURE}::test_realized_accuracy_and_rmse_are_the_judged_window_with_its_coverage",
    ),
    "AccuracyTrigger.floor": (
        "decisions.triggers",
        f"{MEASURE}::test_realized_accuracy_and_rmse_are_the_judged_window_with_its_coverage",
    ),
    "AccuracyTrigger.minSamples": (
        "decisions.triggers",
        f"{MEASURE}::test_realized_accuracy_and_rmse_are_the_judged_window_with_its_coverage",
    ),
    "Triggers.rmse": (
        "decisions.triggers",
        f"{MEASURE}::test_realized_accuracy_and_rmse_are_the_judged_window_with_its_coverage",
    ),
    "RmseTrigger.ceiling": (
        "decisions.triggers",
        f"{MEASURE}::test_realized_accuracy_and_rmse_are_the_judged_window_with_its_coverage",
    ),
    "RmseTrigger.minSamples": (
        "decisions.triggers",
        f"{MEASURE}::test_realized_accuracy_and_rmse_are_the_judged_window_with_its_coverage",
    ),
    "Triggers.estimatedAccuracy": ("decisions.triggers", ESTIMATED),
    "EstimatedAccuracyTrigger.floor": ("decisions.triggers", ESTIMATED),
    "EstimatedAccuracyTrigger.minSamples": ("decisions.triggers", ESTIMATED),
    "Triggers.custom": (
        "handlers.driftpolicy_gather",
        f"{IT}/driftpolicy/test_what_admission_cannot_see.py::test_custom_triggers_without_a_prometheus_are_reported",
    ),
    "CustomTrigger.name": (
        "handlers.driftpolicy_gather",
        f"{UT}/prometheus/test_promql.py::test_custom_query_gets_the_window",
    ),
    "CustomTrigger.query": (
        "prometheus.windows",
        f"{UT}/prometheus/test_promql.py::test_custom_query_gets_the_window",
    ),
    "CustomTrigger.op": (
        "handlers.driftpolicy_gather",
        f"{MEASURE}::test_custom_reading_without_a_sample_has_no_value",
    ),
    "CustomTrigger.threshold": (
        "handlers.driftpolicy_gather",
        f"{MEASURE}::test_custom_reading_without_a_sample_has_no_value",
    ),
    "Triggers.schedule": (
        "decisions.drift",
        f"{IT}/driftpolicy/test_what_admission_cannot_see.py::test_a_schedule_that_never_fires_is_reported_at_once",
    ),
    "DriftPolicySpec.consecutiveBreaches": (
        "decisions.drift",
        f"{DRIFT}::test_hysteresis_needs_consecutive_breaches",
    ),
    "DriftPolicySpec.cooldown": (
        "decisions.drift",
        f"{DRIFT}::test_cooldown_holds_a_new_episode_back",
    ),
    "DriftPolicySpec.budget": (
        "decisions.drift",
        f"{DRIFT}::test_budget_counts_retrains_in_the_sliding_period",
    ),
    "Budget.count": (
        "decisions.drift",
        f"{DRIFT}::test_budget_counts_retrains_in_the_sliding_period",
    ),
    "Budget.period": (
        "decisions.drift",
        f"{DRIFT}::test_budget_counts_retrains_in_the_sliding_period",
    ),
    "DriftPolicySpec.action": ("decisions.drift", f"{DRIFT}::test_alert_only_reports"),
    "DriftPolicySpec.retrain": (
        "resources.retraining",
        f"{UT}/resources/test_retraining.py::test_the_whole_manifest",
    ),
    "Retrain.template": (
        "resources.retraining",
        f"{UT}/resources/test_retraining.py::test_the_whole_manifest",
    ),
    "Retrain.loggedDataSample": (
        "resources.retraining",
        f"{UT}/resources/test_retraining.py::test_logged_data_with_a_dataset_combines_both_so_nothing_is_forgotten",
    ),
    "Retrain.useLoggedData": (
        "resources.retraining",
        f"{UT}/resources/test_retraining.py::test_logged_data_replaces_the_dataset",
    ),
    "DriftPolicySpec.prometheus": (
        "handlers.driftpolicy_gather",
        f"{IT}/driftpolicy/test_driftpolicy.py::test_unreachable_prometheus_never_retrains_and_recovers",
    ),
    "PrometheusSource.url": (
        "handlers.driftpolicy_gather",
        f"{IT}/driftpolicy/test_driftpolicy.py::test_unreachable_prometheus_never_retrains_and_recovers",
    ),
    "PrometheusSource.timeoutSeconds": (
        "handlers.driftpolicy_gather",
        f"{IT}/driftpolicy/test_driftpolicy.py::test_unreachable_prometheus_never_retrains_and_recovers",
    ),
    "DriftPolicySpec.suspend": (
        "handlers.driftpolicy",
        f"{IT}/driftpolicy/test_driftpolicy.py::test_suspend_stops_evaluating",
    ),
}


def _model_of(annotation: object) -> type[BaseModel] | None:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated, list):
        for argument in typing.get_args(annotation):
            found = _model_of(argument)
            if found is not None:
                return found
        return None
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def _declared_by(model: type[BaseModel], name: str) -> str:
    return next(k.__name__ for k in model.__mro__ if name in vars(k).get("__annotations__", {}))


@cache
def _fields() -> dict[str, tuple[str, str | None, object]]:
    """Every spec field: key -> (its Python name, the key of the field holding its model,
    its type)."""
    found: dict[str, tuple[str, str | None, object]] = {}

    def walk(model: type[BaseModel], holder: str | None) -> None:
        for name, field in model.model_fields.items():
            key = f"{_declared_by(model, name)}.{field.alias or name}"
            if key in found:
                continue
            found[key] = (name, holder, field.annotation)
            inner = _model_of(field.annotation)
            if inner is not None:
                walk(inner, key)

    for kind in KINDS:
        spec = _model_of(kind.model_fields["spec"].annotation)
        assert spec is not None
        walk(spec, None)
    return found


def test_every_spec_field_is_registered_and_no_entry_is_stale() -> None:
    fields = set(_fields())
    registered = set(REGISTRY) | set(ELSEWHERE)
    assert sorted(fields - registered) == [], "register these fields: consumer and test"
    assert sorted(registered - fields) == [], "these fields are gone: remove their entries"


@cache
def _source(module: str) -> str:
    return (PACKAGE / Path(*module.split("."))).with_suffix(".py").read_text()


@pytest.mark.parametrize("key", sorted(REGISTRY))
def test_the_consumer_reads_the_field(key: str) -> None:
    consumer, _ = REGISTRY[key]
    name, holder, _ = _fields()[key]
    if consumer == ONE_VALUE:
        annotation = _fields()[key][2]
        assert len(getattr(annotation, "__members__", {})) == 1, f"{key} admits several values"
        return
    if consumer == WHOLE:
        assert holder is not None, f"{key} has no parent to be consumed with"
        assert REGISTRY[holder][0] != WHOLE or _fields()[holder][1] is not None
        return
    wire = key.split(".", 1)[1]
    source = _source(consumer)
    # `.name`, its wire name, or its Python name as a string (read by getattr from a table).
    read = re.search(rf"\.{name}\b", source) or f'"{wire}"' in source or f'"{name}"' in source
    assert read, f'{consumer} never reads {key} (`.{name}`, "{wire}" or "{name}")'


@cache
def _tests_in(path: str) -> frozenset[str]:
    tree = ast.parse((ROOT / path).read_text())
    return frozenset(
        node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    )


@pytest.mark.parametrize("key", sorted(REGISTRY))
def test_the_registered_test_exists(key: str) -> None:
    path, _, function = REGISTRY[key][1].partition("::")
    assert function in _tests_in(path), f"{key}: no test {function} in {path}"
