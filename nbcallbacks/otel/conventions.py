"""Every OpenTelemetry attribute name nbcallbacks writes or reads, in one place.

Two conventions, both written on every span so that each backend renders what it knows:

- OpenTelemetry GenAI semantic conventions, **semantic-conventions-genai 1.42 (status: Development)**. They still
  change between releases; the names below are the ones of that version, hard-coded on purpose (the
  ``opentelemetry-semantic-conventions`` package moves with the SDK, and its GenAI names are experimental).
- OpenInference semantic conventions (Arize; Phoenix reads them natively), as published in
  ``openinference-semantic-conventions`` 0.1.x.

Everything nbcallbacks knows beyond both goes under the ``nbcallbacks.`` prefix.
"""

from __future__ import annotations

from typing import Final

GENAI_SEMCONV_VERSION: Final = "1.42.0"
"""Version of the OpenTelemetry GenAI semantic conventions these names follow."""

SCHEMA_URL: Final = f"https://opentelemetry.io/schemas/{GENAI_SEMCONV_VERSION}"
INSTRUMENTATION_NAME: Final = "nbcallbacks"

# --- OpenTelemetry GenAI (semconv-genai 1.42)
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
ERROR_TYPE: Final = "error.type"

OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_RETRIEVAL: Final = "retrieval"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_INVOKE_WORKFLOW: Final = "invoke_workflow"
OP_EMBEDDINGS: Final = "embeddings"
OP_GENERATE_CONTENT: Final = "generate_content"

# --- exception event (OpenTelemetry general conventions)
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"

# --- OpenInference
OI_SPAN_KIND: Final = "openinference.span.kind"
OI_INPUT_VALUE: Final = "input.value"
OI_INPUT_MIME: Final = "input.mime_type"
OI_OUTPUT_VALUE: Final = "output.value"
OI_OUTPUT_MIME: Final = "output.mime_type"
OI_MODEL_NAME: Final = "llm.model_name"
OI_PROVIDER: Final = "llm.provider"
OI_TOKENS_PROMPT: Final = "llm.token_count.prompt"
OI_TOKENS_COMPLETION: Final = "llm.token_count.completion"
OI_TOKENS_TOTAL: Final = "llm.token_count.total"
OI_TOKENS_CACHE_READ: Final = "llm.token_count.prompt_details.cache_read"
OI_TOKENS_CACHE_WRITE: Final = "llm.token_count.prompt_details.cache_write"
OI_TOKENS_REASONING: Final = "llm.token_count.completion_details.reasoning"
OI_TOOL_NAME: Final = "tool.name"
OI_INPUT_MESSAGES: Final = "llm.input_messages"
OI_OUTPUT_MESSAGES: Final = "llm.output_messages"
OI_MESSAGE_ROLE: Final = "message.role"
OI_MESSAGE_CONTENT: Final = "message.content"
"""Flattened: ``llm.input_messages.{i}.message.role`` / ``.message.content``."""
OI_SESSION_ID: Final = "session.id"
OI_METADATA: Final = "metadata"
OI_TAGS: Final = "tag.tags"

KIND_LLM: Final = "LLM"
KIND_CHAIN: Final = "CHAIN"
KIND_TOOL: Final = "TOOL"
KIND_RETRIEVER: Final = "RETRIEVER"
KIND_AGENT: Final = "AGENT"
KIND_EMBEDDING: Final = "EMBEDDING"

MIME_JSON: Final = "application/json"
MIME_TEXT: Final = "text/plain"

# --- nbcallbacks' own
NB_RUN_ID: Final = "nbcallbacks.run_id"
NB_PARENT_RUN_ID: Final = "nbcallbacks.parent_run_id"
NB_RUN_TYPE: Final = "nbcallbacks.run_type"
NB_STATUS: Final = "nbcallbacks.status"
NB_INCOMPLETE: Final = "nbcallbacks.incomplete"
NB_ABANDONED: Final = "nbcallbacks.abandoned"
NB_HIDDEN: Final = "nbcallbacks.hidden"
NB_LANGGRAPH_NODE: Final = "nbcallbacks.langgraph.node"
NB_LANGGRAPH_STEP: Final = "nbcallbacks.langgraph.step"
NB_TAGS: Final = "nbcallbacks.tags"
NB_METADATA: Final = "nbcallbacks.metadata"
NB_METRIC_PREFIX: Final = "nbcallbacks.metric."
NB_STREAMED_CHUNKS: Final = "nbcallbacks.streamed_chunks"
NB_CHUNKS_NOT_KEPT: Final = "nbcallbacks.chunks_not_kept"
NB_THREAD: Final = "nbcallbacks.thread"
NB_SESSION: Final = "nbcallbacks.session"
NB_ERROR_MESSAGE: Final = "nbcallbacks.error"

# --- mappings
RUN_TYPE_TO_KIND: Final[dict[str, str]] = {
    "llm": KIND_LLM,
    "chat_model": KIND_LLM,
    "tool": KIND_TOOL,
    "retriever": KIND_RETRIEVER,
}
"""OpenInference span kind of a run type; anything else is a CHAIN (an AGENT for a LangGraph graph)."""

RUN_TYPE_TO_OPERATION: Final[dict[str, str]] = {
    "llm": OP_TEXT_COMPLETION,
    "chat_model": OP_CHAT,
    "tool": OP_EXECUTE_TOOL,
    "retriever": OP_RETRIEVAL,
}
"""``gen_ai.operation.name`` of a run type (a LangGraph graph is ``invoke_agent``; other chains have none)."""

OPERATION_TO_RUN_TYPE: Final[dict[str, str]] = {
    OP_CHAT: "chat_model",
    OP_TEXT_COMPLETION: "llm",
    OP_GENERATE_CONTENT: "chat_model",
    OP_EMBEDDINGS: "llm",
    OP_EXECUTE_TOOL: "tool",
    OP_RETRIEVAL: "retriever",
    OP_INVOKE_AGENT: "chain",
    OP_INVOKE_WORKFLOW: "chain",
}

KIND_TO_RUN_TYPE: Final[dict[str, str]] = {
    KIND_LLM: "llm",
    KIND_EMBEDDING: "llm",
    KIND_TOOL: "tool",
    KIND_RETRIEVER: "retriever",
    KIND_CHAIN: "chain",
    KIND_AGENT: "chain",
}
