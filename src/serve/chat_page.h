// The built-in chat page served at / by `onecard serve`: one static HTML file (chat_page.html, inline CSS and
// JS, no external requests) compiled into the binary at build time, so the server needs no files at run time.
#pragma once

#include <string_view>

namespace onecard::serve {

// The page's bytes (UTF-8 HTML), valid for the whole program.
std::string_view chat_page_html();

}  // namespace onecard::serve
