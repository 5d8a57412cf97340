/** /metrics texts as vLLM (current and older) and SGLang print them. */

/** vLLM with two data-parallel engines serving one model. */
export const VLLM_TWO_ENGINES = `# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{generation="0"} 12345.0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 37.0
vllm:num_requests_running{engine="1",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 35.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 3.0
vllm:num_requests_waiting{engine="1",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 0.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 0.62
vllm:kv_cache_usage_perc{engine="1",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 0.71
# HELP vllm:num_preemptions_total Cumulative number of preemption from the engine.
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 2.0
vllm:num_preemptions_total{engine="1",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 1.0
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 1.5e+06
vllm:prompt_tokens_total{engine="1",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 500000.0
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 300000.0
vllm:generation_tokens_total{engine="1",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 100000.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 400.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 400.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 120.5
vllm:time_to_first_token_seconds_bucket{engine="1",le="0.001",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="1",le="+Inf",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 100.0
vllm:time_to_first_token_seconds_count{engine="1",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 100.0
vllm:time_to_first_token_seconds_sum{engine="1",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 29.5
# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.3",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 3.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 398.0
vllm:e2e_request_latency_seconds_count{engine="0",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 398.0
vllm:e2e_request_latency_seconds_sum{engine="0",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 3980.0
vllm:e2e_request_latency_seconds_created{engine="0",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 1.7e+09
vllm:e2e_request_latency_seconds_count{engine="1",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 102.0
vllm:e2e_request_latency_seconds_sum{engine="1",model_name="Qwen/Qwen2.5-VL-7B-Instruct"} 1020.0
`;

/** One server, two served models (the worker asks about one of them). */
export const VLLM_TWO_MODELS = `# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="model-a"} 10
vllm:num_requests_running{engine="0",model_name="model-b"} 90
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="model-a"} 1
vllm:num_requests_waiting{engine="0",model_name="model-b"} 50
`;

/** A server from before late 2025: `gpu_cache_usage_perc`, a timestamp, odd spacing, escapes. */
export const VLLM_OLD = `# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="llava"} 0.25 1712345678000
vllm:num_requests_running{model_name="llava"}   4.0
vllm:num_requests_waiting{model_name="llava",note="say \\"hi\\", ok\\n"} 2.0
vllm:num_requests_swapped{model_name="llava"} 0.0
this line is garbage {{{
vllm:num_preemptions_total{model_name="llava"} NaN
`;

export const SGLANG = `# HELP sglang:num_running_reqs The number of running requests.
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{model_name="qwen"} 12.0
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{model_name="qwen"} 7.0
# TYPE sglang:token_usage gauge
sglang:token_usage{model_name="qwen"} 0.4
# TYPE sglang:prompt_tokens_total counter
sglang:prompt_tokens_total{model_name="qwen"} 1000.0
`;

/** Something else's metrics (no engine gauges at all). */
export const UNRELATED = `# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
`;
