//! The schema of the passage index: one document per passage, with its
//! article's title, tags and analysed terms.

use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TantivyDocument, TextFieldIndexing,
    TextOptions, Value,
};

/// Name under which the analyzer is registered.
pub(super) const ANALYZER: &str = "en_stem";
/// Name of the tokenizer of already analysed terms (split on spaces).
pub(super) const TERMS_TOKENIZER: &str = "terms";

/// The fields of a passage.
#[derive(Clone, Copy)]
pub(super) struct Fields {
    pub(super) slug: Field,
    pub(super) title: Field,
    pub(super) heading: Field,
    pub(super) body: Field,
    pub(super) tags: Field,
    pub(super) markdown: Field,
    pub(super) url: Field,
    pub(super) tags_raw: Field,
    /// The passage's analyzed terms (with its article's title and tags),
    /// stored so that coverage needs no re-analysis at query time.
    pub(super) terms: Field,
    /// The distinct analysed terms of the passage's whole article, indexed.
    pub(super) article: Field,
}

/// The schema of the passage index and its fields.
pub(super) fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let fields = Fields {
        slug: builder.add_text_field("slug", STRING | STORED),
        title: builder.add_text_field("title", text.clone()),
        heading: builder.add_text_field("heading", text.clone()),
        body: builder.add_text_field("body", text.clone()),
        tags: builder.add_text_field("tags", text),
        markdown: builder.add_text_field("markdown", STORED),
        url: builder.add_text_field("url", STORED),
        tags_raw: builder.add_text_field("tags_raw", STORED),
        terms: builder.add_text_field("terms", STORED),
        article: builder.add_text_field(
            "article",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(TERMS_TOKENIZER)
                    .set_index_option(IndexRecordOption::WithFreqs),
            ),
        ),
    };
    (builder.build(), fields)
}

/// A stored text field of `doc` (empty when absent).
pub(super) fn field_text(doc: &TantivyDocument, field: Field) -> &str {
    doc.get_first(field)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
}
