-- wrk script: POST /feedback with a valid token, a distinct trace per request.
-- wrk ... -s post_feedback.lua URL -- TOKENS_FILE
-- TOKENS_FILE has one "trace_id token" pair per line (made by bench_durable.py).
local pairs_ = {}
local next_index = 1
local types = {
  '"type":"rating","value":%d,"comment":"helpful but long"',
  '"type":"thumbs","value":"up","comment":"correct answer"',
  '"type":"text","value":"The dates in the answer were wrong."',
}

init = function(args)
  for line in io.lines(args[1]) do
    local trace, token = line:match("^(%S+) (%S+)$")
    pairs_[#pairs_ + 1] = {trace, token}
  end
end

request = function()
  local pair = pairs_[next_index]
  next_index = next_index % #pairs_ + 1
  local t = string.format(types[math.random(1, 3)], math.random(1, 5))
  local body = string.format('{"trace_id":"%s",%s,"metadata":{"route":"/chat","prompt_tokens":%d,' ..
    '"completion_tokens":256,"latency_ms":%d,"app_version":"3.14.1","model":"gpt-4o-mini-2024-07-18"}}',
    pair[1], t, math.random(100, 4000), math.random(200, 9000))
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["X-Feedback-Token"] = pair[2]}, body)
end
