// `onecard tokenize -m MODEL (--text T | --file F)`: the token ids of a text under the model's tokenizer, for
// checking prompts and comparing with other tools. Works on vocabulary-only GGUF files too.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "app/commands.h"
#include "gguf/file.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

namespace onecard::app {
namespace {

struct TokenizeOptions {
  std::string model, text, file;
  bool no_bos = false;
  bool special = false;
  bool show_pieces = false;
};

Result<std::string> read_input(const TokenizeOptions& o) {
  if (o.file.empty()) return o.text;
  if (o.file == "-") return std::string(std::istreambuf_iterator<char>(std::cin), {});
  std::ifstream in(o.file, std::ios::binary);
  if (!in) return make_error("{}: cannot open", o.file);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A piece as a readable literal: printable UTF-8 as it is, control characters escaped, and the bytes of an
// unfinished character (byte tokens) as \xNN.
std::string quote_piece(std::string_view piece) {
  std::string out = "'";
  for (size_t pos = 0; pos < piece.size();) {
    const text::Utf8Sequence seq = text::next_utf8(piece, pos);
    const auto c = static_cast<uint8_t>(piece[pos]);
    if (seq.status != text::Utf8Status::kComplete) {
      for (size_t k = 0; k < seq.length; ++k)
        out += fmt::format("\\x{:02X}", static_cast<uint8_t>(piece[pos + k]));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\'' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      out += fmt::format("\\x{:02X}", c);
    } else {
      out.append(piece.substr(pos, seq.length));
    }
    pos += seq.length;
  }
  return out + "'";
}

int run_tokenize(const TokenizeOptions& o) {
  auto fail = [](const Error& e) {
    fmt::print(stderr, "onecard tokenize: {}\n", e.message());
    return 1;
  };
  auto input = read_input(o);
  if (!input.ok()) return fail(input.error());
  auto file = gguf::File::open(o.model);
  if (!file.ok()) return fail(file.error());
  auto tok = text::Tokenizer::from_gguf(*file);
  if (!tok.ok()) return fail(tok.error());
  text::EncodeOptions eo;
  if (o.no_bos) eo.add_bos = false;
  eo.parse_special = o.special;
  auto ids = (*tok)->encode(*input, eo);
  if (!ids.ok()) return fail(ids.error().with_context(o.file.empty() ? "--text" : o.file));
  if (o.show_pieces) {
    for (int32_t id : *ids) fmt::print("{}\t{}\n", id, quote_piece((*tok)->token_piece(id, true)));
  } else {
    fmt::print("{}\n", fmt::join(*ids, " "));
  }
  return 0;
}

}  // namespace

Runner add_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  auto* cmd = app.add_subcommand("tokenize", "Print the token ids of a text under a model's tokenizer");
  cmd->add_option("-m,--model", o->model, "GGUF model or vocabulary file")->required();
  auto* input = cmd->add_option_group("input", "Where the text comes from (one of)");
  input->add_option("--text", o->text, "The text to tokenize");
  input->add_option("--file", o->file, "Read the text from a file ('-': standard input)");
  input->require_option(1);
  cmd->add_flag("--no-bos", o->no_bos, "Do not add the BOS token even if the vocabulary asks for it");
  cmd->add_flag("--special", o->special, "Recognise control tokens such as <｜User｜> written in the text");
  cmd->add_flag("--show-pieces", o->show_pieces, "Print one token a line: its id and the text it stands for");
  return [o] { return run_tokenize(*o); };
}

}  // namespace onecard::app
