// The subcommands of `onecard`. Each registers its options on the CLI11 app and returns its exit code when
// run.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace onecard::app {

using Runner = std::function<int()>;

Runner add_inspect(CLI::App& app);
Runner add_gen(CLI::App& app);
Runner add_logits(CLI::App& app);
Runner add_run(CLI::App& app);
Runner add_quantize(CLI::App& app);
Runner add_convert(CLI::App& app);
Runner add_perplexity(CLI::App& app);
Runner add_imatrix(CLI::App& app);
Runner add_chat(CLI::App& app);
Runner add_tokenize(CLI::App& app);
Runner add_bench_serve(CLI::App& app);
Runner add_bench(CLI::App& app);
Runner add_serve(CLI::App& app);

}  // namespace onecard::app
