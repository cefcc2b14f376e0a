"""Attribute names: the OpenTelemetry GenAI semantic conventions, then plait's own.

GenAI names follow the conventions as of semantic-conventions-genai (``gen_ai.provider.name``
replaced the deprecated ``gen_ai.system``; content goes in ``gen_ai.input.messages`` /
``gen_ai.output.messages`` / ``gen_ai.system_instructions``, as JSON). Spelled out here
rather than imported from the incubating ``opentelemetry-semantic-conventions`` package,
so plait-otel needs nothing but ``opentelemetry-api``.
"""

# -- GenAI semantic conventions (model-call spans) -------------------------------------
OPERATION = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_SEED = "gen_ai.request.seed"
REQUEST_STOP = "gen_ai.request.stop_sequences"
OUTPUT_TYPE = "gen_ai.output.type"
RESPONSE_MODEL = "gen_ai.response.model"
FINISH_REASONS = "gen_ai.response.finish_reasons"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ = "gen_ai.usage.cache_read.input_tokens"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
ERROR_TYPE = "error.type"
RESPONSE_ID = "gen_ai.response.id"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
TOKEN_TYPE = "gen_ai.token.type"  # on the token-usage metric: "input" or "output"

# -- GenAI conventions for workflows and agents (run and step spans) ------------------------
# A run is an ``invoke_workflow`` span, each step an ``invoke_agent`` span, both INTERNAL.
# The workflow's name goes in ``gen_ai.workflow.name`` (semantic-conventions v1.41) and in
# ``gen_ai.agent.name``, which replaces it from semantic-conventions-genai v0.1.0 on.
INVOKE_WORKFLOW = "invoke_workflow"
INVOKE_AGENT = "invoke_agent"
WORKFLOW_NAME = "gen_ai.workflow.name"
AGENT_NAME = "gen_ai.agent.name"

# -- GenAI metrics ----------------------------------------------------------------------------
TOKEN_USAGE = "gen_ai.client.token.usage"
OPERATION_DURATION = "gen_ai.client.operation.duration"
# the conventions' advised bucket boundaries
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864]
DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92]

# -- OpenInference (opt-in, for Phoenix and other OpenInference backends) --------------------
OI_SPAN_KIND = "openinference.span.kind"  # CHAIN (runs, steps), AGENT (agent steps), LLM
OI_LLM_SYSTEM = "llm.system"
OI_LLM_PROVIDER = "llm.provider"
OI_LLM_MODEL = "llm.model_name"
OI_LLM_PARAMETERS = "llm.invocation_parameters"  # JSON
OI_PROMPT_TOKENS = "llm.token_count.prompt"
OI_COMPLETION_TOKENS = "llm.token_count.completion"
OI_TOTAL_TOKENS = "llm.token_count.total"
OI_INPUT = "input.value"  # content, so only with capture_content
OI_INPUT_MIME = "input.mime_type"
OI_OUTPUT = "output.value"
OI_OUTPUT_MIME = "output.mime_type"

# tool-execution spans (execute_tool)
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_DESCRIPTION = "gen_ai.tool.description"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"  # content: only when captured
TOOL_RESULT = "gen_ai.tool.call.result"

# -- plait -------------------------------------------------------------------------------
RUN_ID = "plait.run_id"
PIPELINE = "plait.pipeline"
STATUS = "plait.status"  # ok | failed | stopped | cancelled
STOP_REASON = "plait.stop.reason"
STEP_ID = "plait.step.id"  # the step's path: "route/billing" inside a router
STEP_KIND = "plait.step.kind"  # FunctionStep, Router, FanOut, Ensemble, AgentStep, ...
STEP_ATTEMPTS = "plait.step.attempts"  # on step spans: how many attempts ran
STEP_ATTEMPT = "plait.step.attempt"  # on model-call spans: the attempt making the call
ROUTE = "plait.route"
PROVIDER = "plait.provider"  # the Agent's model prefix, "openai" in "openai:gpt-4o"
COST = "plait.cost_usd"  # an exact decimal, as a string
COST_UNKNOWN = "plait.cost_unknown"  # true, instead of a cost, when a model has no price
STREAMED = "plait.streamed"  # on model-call spans: made through ctx.stream
# on streamed model-call spans: seconds from the request to its first text (the span's
# counterpart of the GenAI metric gen_ai.server.time_to_first_token)
TIME_TO_FIRST_TOKEN = "plait.time_to_first_token_s"
BUDGET_LEFT = "plait.budget.remaining_usd"
USAGE_INPUT = "plait.usage.input_tokens"
USAGE_OUTPUT = "plait.usage.output_tokens"
USAGE_CALLS = "plait.usage.calls"
USAGE_CACHE_HITS = "plait.usage.cache_hits"  # requests a plugin answered (plait-cache), free
FANOUT_ITEMS = "plait.fanout.items"
FANOUT_OK = "plait.fanout.ok"
FANOUT_FAILED = "plait.fanout.failed"
FANOUT_LIMIT = "plait.fanout.limit"
FANOUT_FAIL_FAST = "plait.fanout.fail_fast"
AGGREGATOR = "plait.aggregator"
AGG_N = "plait.aggregation.n"
AGG_CANDIDATES = "plait.aggregation.candidates"
AGG_FAILURES = "plait.aggregation.failures"
AGG_AGREEMENT = "plait.aggregation.agreement"
AGG_WINNER = "plait.aggregation.winner_index"
AGG_FLAGGED = "plait.aggregation.flagged"
AGG_SAVED = "plait.aggregation.calls_saved"
