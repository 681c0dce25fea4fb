-- Argo CD health check for extraction.pybase.io/ExtractionJob.
-- Progressing while the job is pending, queued for a slot of its
-- ExtractorClass, running or retrying; Healthy when it succeeded; Degraded
-- when it failed or was cancelled.
local hs = {}
if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to start the job."
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to handle the latest spec."
  return hs
end
local phase = obj.status.phase
if phase == "Succeeded" then
  hs.status = "Healthy"
elseif phase == "Failed" or phase == "Cancelled" then
  hs.status = "Degraded"
else
  -- Pending, Queued, Running, Retrying: the job is on its way.
  hs.status = "Progressing"
end
hs.message = obj.status.message or phase
return hs
