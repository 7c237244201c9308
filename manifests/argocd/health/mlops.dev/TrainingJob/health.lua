-- Argo CD health of a TrainingJob, from its conditions (Succeeded, Suspended) and observedGeneration.
local hs = {status = "Progressing", message = "Waiting for the operator"}
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
local function describe(condition)
  return condition.reason .. ": " .. (condition.message or "")
end
local succeeded = conditions["Succeeded"]
local suspended = conditions["Suspended"]
if succeeded ~= nil and succeeded.status == "True" then
  hs.status = "Healthy"
  hs.message = "Trained " .. (obj.status.modelVersion or "a ModelVersion")
elseif succeeded ~= nil and succeeded.status == "False" then
  hs.status = "Degraded"
  hs.message = describe(succeeded)
elseif suspended ~= nil and suspended.status == "True" then
  hs.status = "Suspended"
  hs.message = describe(suspended)
elseif succeeded ~= nil then
  hs.message = describe(succeeded)
end
return hs
