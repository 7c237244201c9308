-- Argo CD health of a ModelDeployment, from its conditions (Degraded, Progressing, Ready) and
-- observedGeneration. A deployment waiting for its first validated version is Progressing.
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
local degraded = conditions["Degraded"]
local progressing = conditions["Progressing"]
local ready = conditions["Ready"]
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded)
elseif progressing ~= nil and progressing.status == "True" then
  hs.message = describe(progressing)
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
elseif ready ~= nil and ready.status == "False" and ready.reason ~= "NoVersion" then
  hs.status = "Degraded"
  hs.message = describe(ready)
elseif ready ~= nil then
  hs.message = describe(ready)
end
return hs
