#include "synth/metadata.h"

namespace onecard::synth {

// DeepSeek-V3/R1's conversation layout with this vocabulary's special tokens, and tool calling as those
// models do it, so that a server can be tested end to end: system text (and a list of the `tools`) after BOS,
// then <｜User｜> and <｜Assistant｜> turns, each answer closed by EOS. An answer's tool calls follow its
// text as
// <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>...
// <｜tool▁calls▁end｜>; the results come as one <｜tool▁outputs▁begin｜>...<｜tool▁outputs▁end｜> block of
// <｜tool▁output▁begin｜>...<｜tool▁output▁end｜> entries, after which the assistant goes on without a new
// <｜Assistant｜> (as in DeepSeek's templates). Arguments given as a string are written as they are, others
// as JSON.
constexpr std::string_view kChatTemplate = R"TEMPLATE({{- bos_token -}}
{%- set ns = namespace(system='', in_outputs=false) -%}
{%- for message in messages if message['role'] == 'system' -%}
  {%- set ns.system = ns.system + ('\n\n' if ns.system else '') + message['content'] -%}
{%- endfor -%}
{%- if tools -%}
  {%- set ns.system = ns.system + ('\n\n' if ns.system else '') -%}
  {%- set ns.system = ns.system + '## Tools\n\nYou can call these functions.' -%}
  {%- for tool in tools -%}
    {%- set fn = tool['function'] -%}
    {%- set ns.system = ns.system + '\n\n### ' + fn['name'] -%}
    {%- if fn['description'] -%}{%- set ns.system = ns.system + '\n' + fn['description'] -%}{%- endif -%}
    {%- if fn['parameters'] is defined -%}
      {%- set ns.system = ns.system + '\nParameters: ' + (fn['parameters'] | tojson) -%}
    {%- endif -%}
  {%- endfor -%}
{%- endif -%}
{{- ns.system -}}
{%- for message in messages -%}
  {%- if message['role'] != 'tool' and ns.in_outputs -%}
    {{- '<｜tool▁outputs▁end｜>' -}}
  {%- endif -%}
  {%- if message['role'] == 'user' -%}
    {{- '<｜User｜>' + message['content'] -}}
  {%- elif message['role'] == 'assistant' -%}
    {%- if not ns.in_outputs -%}{{- '<｜Assistant｜>' -}}{%- endif -%}
    {%- if message['content'] -%}{{- message['content'] -}}{%- endif -%}
    {%- if message['tool_calls'] -%}
      {{- '<｜tool▁calls▁begin｜>' -}}
      {%- for call in message['tool_calls'] -%}
        {%- set args = call['function']['arguments'] -%}
        {%- if not loop.first -%}{{- '\n' -}}{%- endif -%}
        {{- '<｜tool▁call▁begin｜>function<｜tool▁sep｜>' + call['function']['name'] + '\n```json\n' -}}
        {{- (args if args is string else args | tojson) + '\n```<｜tool▁call▁end｜>' -}}
      {%- endfor -%}
      {{- '<｜tool▁calls▁end｜>' -}}
    {%- endif -%}
    {{- eos_token -}}
  {%- elif message['role'] == 'tool' -%}
    {{- '\n' if ns.in_outputs else '<｜tool▁outputs▁begin｜>' -}}
    {{- '<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>' -}}
  {%- endif -%}
  {%- set ns.in_outputs = message['role'] == 'tool' -%}
{%- endfor -%}
{%- if ns.in_outputs -%}
  {{- '<｜tool▁outputs▁end｜>' -}}
{%- elif add_generation_prompt -%}
  {{- '<｜Assistant｜>' -}}
{%- endif -%})TEMPLATE";

std::vector<std::pair<std::string, gguf::MetaValue>> build_metadata(const ModelSpec& s, const Vocab& vocab) {
  using gguf::MetaValue;
  std::vector<std::pair<std::string, MetaValue>> kv;
  const auto put = [&kv](const std::string& key, MetaValue v) { kv.emplace_back(key, std::move(v)); };
  const auto arch = [&put](const std::string& suffix, MetaValue v) {
    put("deepseek2." + suffix, std::move(v));
  };
  const bool split = s.mla == model::MlaLayout::kSplit;

  put("general.architecture", MetaValue::string("deepseek2"));
  put("general.name", MetaValue::string(s.name));
  arch("block_count", MetaValue::u32(s.n_layer));
  arch("context_length", MetaValue::u32(s.n_ctx));
  arch("embedding_length", MetaValue::u32(s.n_embd));
  arch("feed_forward_length", MetaValue::u32(s.n_ff));
  arch("attention.head_count", MetaValue::u32(s.n_head));
  // The split (absorbed) convention describes the cache as one KV head of width kv_lora (+ rope for K); the
  // per-head sizes move to the *_mla keys.
  arch("attention.head_count_kv", MetaValue::u32(head_count_kv(s)));
  arch("rope.freq_base", MetaValue::f32(s.rope_base));
  arch("attention.layer_norm_rms_epsilon", MetaValue::f32(s.rms_eps));
  arch("vocab_size", MetaValue::u32(static_cast<uint32_t>(vocab.tokens.size())));
  arch("leading_dense_block_count", MetaValue::u32(s.n_dense));
  if (s.q_lora > 0) arch("attention.q_lora_rank", MetaValue::u32(s.q_lora));
  arch("attention.kv_lora_rank", MetaValue::u32(s.kv_lora));
  arch("attention.key_length", MetaValue::u32(split ? s.kv_lora + s.qk_rope : s.qk_nope + s.qk_rope));
  arch("attention.value_length", MetaValue::u32(split ? s.kv_lora : s.v_head));
  if (split) {
    arch("attention.key_length_mla", MetaValue::u32(s.qk_nope + s.qk_rope));
    arch("attention.value_length_mla", MetaValue::u32(s.v_head));
  }
  arch("expert_feed_forward_length", MetaValue::u32(s.n_ff_exp));
  arch("expert_count", MetaValue::u32(s.n_expert));
  arch("expert_used_count", MetaValue::u32(s.n_expert_used));
  arch("expert_shared_count", MetaValue::u32(s.n_expert_shared));
  arch("expert_weights_scale", MetaValue::f32(s.expert_weights_scale));
  arch("expert_weights_norm", MetaValue::boolean(s.expert_weights_norm));
  arch("expert_gating_func", MetaValue::u32(static_cast<uint32_t>(s.gating)));
  if (s.n_group > 1) {
    arch("expert_group_count", MetaValue::u32(s.n_group));
    arch("expert_group_used_count", MetaValue::u32(s.n_group_used));
  }
  arch("rope.dimension_count", MetaValue::u32(s.qk_rope));
  if (s.yarn) {
    arch("rope.scaling.type", MetaValue::string("yarn"));
    arch("rope.scaling.factor", MetaValue::f32(s.yarn_factor));
    arch("rope.scaling.original_context_length", MetaValue::u32(s.yarn_original_ctx));
    arch("rope.scaling.yarn_log_multiplier", MetaValue::f32(s.yarn_log_multiplier));
  }
  put("tokenizer.ggml.model", MetaValue::string("gpt2"));
  put("tokenizer.ggml.pre", MetaValue::string("deepseek-v3"));
  put("tokenizer.ggml.tokens", MetaValue::strings(vocab.tokens));
  put("tokenizer.ggml.token_type", MetaValue::i32s(vocab.types));
  put("tokenizer.ggml.merges", MetaValue::strings(vocab.merges));
  put("tokenizer.ggml.bos_token_id", MetaValue::u32(vocab.bos));
  put("tokenizer.ggml.eos_token_id", MetaValue::u32(vocab.eos));
  put("tokenizer.ggml.add_bos_token", MetaValue::boolean(true));
  put("tokenizer.chat_template", MetaValue::string(std::string(kChatTemplate)));
  put("general.file_type", MetaValue::u32(model::scheme_file_type(s.type)));
  return kv;
}

}  // namespace onecard::synth
