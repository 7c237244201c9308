-- Argo CD health of a ModelVersion, from its Ready condition and observedGeneration.
-- A version that passed its gates and waits for a person (AwaitingApproval) is Suspended.
local hs = {status = "Progressing", message = "Waiting for the operator"}
if obj.status == nil then
  return hs
end
local generation = obj.metadata.generation or 0
if (obj.status.observedGeneration or 0) < generation then
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end
local ready = nil
for _, condition in ipairs(obj.status.conditions or {}) do
  if condition.type == "Ready" then
    ready = condition
  end
end
if ready == nil then
  return hs
end
hs.message = ready.reason .. ": " .. (ready.message or "")
if ready.status == "True" then
  hs.status = "Healthy"
elseif ready.reason == "AwaitingApproval" then
  hs.status = "Suspended"
elseif ready.status == "False" and ready.reason ~= "Validating" then
  hs.status = "Degraded"
end
return hs
