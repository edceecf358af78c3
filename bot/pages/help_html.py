"""HTML of the help centre (zh / en). Every value from the FAQ or the query goes through `escape`.

Server-rendered, so it works without JavaScript and search engines can read it; the only script on the page
is the bubble itself ("still need help? chat with us" buttons carry `data-kefu-open`).
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from bot.pages.catalog import Article
from bot.pages.texts import text

CARD_ARTICLES = 5  # per topic on the help centre's front page; the rest on the topic's own page


def _t(language: str, key: str, **values: object) -> str:
    return escape(text(key, language, **values))


def _link(path: str, language: str, **query: str) -> str:
    return escape(f"{path}?{urlencode({'lang': language, **query})}")


def page(language: str, title: str, body: str, widget_src: str) -> str:
    other = "en" if language == "zh" else "zh"
    html_lang, other_lang = ("zh-CN", "en") if language == "zh" else ("en", "zh-CN")
    return f"""<!doctype html>
<html lang="{html_lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · {_t(language, "shop")}</title>
<link rel="icon" href="/demo/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/demo/shop.css">
<link rel="stylesheet" href="/demo/help.css">
</head>
<body class="help">
<header class="site-header">
  <a class="brand" href="/"><span class="brand-mark" aria-hidden="true">竹</span>{_t(language, "shop")}</a>
  <nav class="site-nav" aria-label="{_t(language, "title")}">
    <a href="/">{_t(language, "back")}</a>
    <a href="{_link("/help", language)}" aria-current="page">{_t(language, "title")}</a>
    <a class="lang-switch" href="{_link("/help", other)}" lang="{other_lang}">{_t(language, "switch")}</a>
  </nav>
</header>
<main class="help-main">
{body}
</main>
<footer class="site-footer"><p>© 2026 {_t(language, "shop")} · service@demo-shop.example</p></footer>
<script src="{escape(widget_src)}" data-kefu-lang="{language}"></script>
</body>
</html>
"""


def search_form(language: str, query: str = "") -> str:
    return f"""<form class="help-search" action="/help" method="get" role="search">
  <input type="hidden" name="lang" value="{language}">
  <label class="visually-hidden" for="help-q">{_t(language, "search")}</label>
  <input id="help-q" name="q" type="search" value="{escape(query)}" placeholder="{_t(language, "placeholder")}"
         autocomplete="off" maxlength="200">
  <button type="submit">{_t(language, "search")}</button>
</form>"""


def still_need_help(language: str, message: str = "") -> str:
    prefill = f' data-kefu-message="{escape(message)}"' if message else ""
    return f"""<aside class="help-chat">
  <h2>{_t(language, "still")}</h2>
  <p>{_t(language, "chat_hint")}</p>
  <button type="button" class="help-chat-button" data-kefu-open{prefill}>{_t(language, "chat")}</button>
</aside>"""


def _article_item(article: Article, language: str, snippet: bool = False) -> str:
    answer = f'<p class="help-snippet">{escape(_shorten(article.answer))}</p>' if snippet else ""
    return (f'<li><a href="{_link("/help/" + article.id, language)}">{escape(article.question)}</a>{answer}</li>')


def _shorten(text: str, limit: int = 140) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def home(language: str, query: str, results: list[Article] | None, most_asked: list[Article],
         categories: list[tuple[str, str, list[Article]]]) -> str:
    parts = [f'<section class="help-hero"><h1>{_t(language, "hero")}</h1>{search_form(language, query)}</section>']
    if results is not None:
        items = "".join(_article_item(a, language, snippet=True) for a in results)
        listing = (f'<ol class="help-results">{items}</ol>' if results
                   else f'<p class="help-empty">{_t(language, "no_results")}</p>')
        parts.append(f'<section class="help-section" aria-labelledby="results-h">'
                     f'<h2 id="results-h">{_t(language, "results", q=query)}</h2>{listing}</section>')
    items = "".join(_article_item(a, language) for a in most_asked)
    parts.append(f'<section class="help-section help-popular" aria-labelledby="popular-h">'
                 f'<h2 id="popular-h">{_t(language, "most_asked")}</h2><ol>{items}</ol></section>')
    cards = "".join(_category_card(language, key, label, articles) for key, label, articles in categories if articles)
    parts.append(f'<section class="help-section" aria-labelledby="browse-h"><h2 id="browse-h">'
                 f'{_t(language, "browse")}</h2><div class="help-categories">{cards}</div></section>')
    parts.append(still_need_help(language))
    return "\n".join(parts)


def _category_card(language: str, key: str, label: str, articles: list[Article]) -> str:
    more = ""
    if len(articles) > CARD_ARTICLES:
        link = _link("/help", language, category=key)
        more = f'<p class="help-more"><a href="{link}">{_t(language, "all_n", n=len(articles))}</a></p>'
    items = "".join(_article_item(a, language) for a in articles[:CARD_ARTICLES])
    return (f'<section class="help-category" id="cat-{escape(key)}" aria-labelledby="cat-{escape(key)}-h">'
            f'<h3 id="cat-{escape(key)}-h">{escape(label)}</h3><ul>{items}</ul>{more}</section>')


def category_page(language: str, label: str, articles: list[Article]) -> str:
    items = "".join(_article_item(a, language, snippet=True) for a in articles)
    return f"""<nav class="help-crumbs" aria-label="breadcrumb">
  <a href="{_link("/help", language)}">{_t(language, "title")}</a> ›
</nav>
<section class="help-section"><h1>{escape(label)}</h1><ol class="help-results">{items}</ol></section>
{still_need_help(language)}
{search_form(language)}"""


def article_page(language: str, article: Article, category: str, related: list[Article]) -> str:
    paragraphs = "".join(f"<p>{escape(p)}</p>" for p in article.answer.split("\n") if p.strip())
    related_html = ""
    if related:
        related_html = (f'<section class="help-section" aria-labelledby="related-h"><h2 id="related-h">'
                        f'{_t(language, "related")}</h2><ul>'
                        f'{"".join(_article_item(a, language) for a in related)}</ul></section>')
    return f"""<nav class="help-crumbs" aria-label="breadcrumb">
  <a href="{_link("/help", language)}">{_t(language, "title")}</a> ›
  <a href="{_link("/help", language, category=article.category)}">{escape(category)}</a>
</nav>
<article class="help-article" data-faq-id="{escape(article.id)}">
  <h1>{escape(article.question)}</h1>
  <div class="help-answer">{paragraphs}</div>
</article>
{still_need_help(language, article.question)}
{related_html}
{search_form(language)}"""
