-- Argo CD health of a DriftPolicy, from spec.suspend, its Ready condition and observedGeneration.
-- Detected drift is the policy doing its job, so it stays Healthy (the message says so).
local hs = {status = "Progressing", message = "Waiting for the operator"}
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true: triggers are not evaluated"
  return hs
end
if obj.status == nil then
  return hs
end
local generation = obj.metadata.generation or 0
if (obj.status.observedGeneration or 0) < generation then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
local conditions = {}
for _, condition in ipairs(obj.status.conditions or {}) do
  conditions[condition.type] = condition
end
local ready = conditions["Ready"]
local drift = conditions["DriftDetected"]
if ready == nil then
  return hs
end
hs.message = ready.reason .. ": " .. (ready.message or "")
if ready.status == "True" then
  hs.status = "Healthy"
  if drift ~= nil and drift.status == "True" then
    hs.message = drift.reason .. ": " .. (drift.message or "")
  end
elseif ready.status == "False" then
  hs.status = "Degraded"
end
return hs
