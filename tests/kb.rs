//! The knowledge base on odd Markdown, hostile queries, incremental
//! re-indexing, persistence, and hot reload while `run` is running.

use std::path::Path;
use std::time::Duration;

use switchboard::app::App;
use switchboard::clock::system;
use switchboard::config::{KnowledgeBaseSettings, Settings};
use switchboard::kb::{self, KnowledgeBase};

fn write(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn sample(root: &Path) {
    write(
        root,
        "billing/refunds.md",
        b"---\ntitle: Refunds\ntags: [billing]\n---\n# Refunds\n\n## How to get a refund\nAsk within 14 days of the charge.\n\n## Timing\nRefunds take 5 to 10 business days.\n",
    );
    write(
        root,
        "no-heading.md",
        b"Plain text without any heading about invoices and receipts.\n",
    );
    write(root, "broken-front.md", b"---\ntitle: [unclosed\n---\n# Broken front matter\n\nStill searchable body about passwords.\n");
    write(root, "binary.md", b"valid line\n\xff\xfe not utf-8 \x80\n");
    write(root, "empty.md", b"");
    let big = "Lorem ipsum dolor sit amet consectetur adipiscing elit. ".repeat(20);
    let mut huge = String::from("# Huge article\n\n");
    while huge.len() < 1_000_000 {
        huge.push_str(&big);
        huge.push_str("\n\n");
    }
    huge.push_str("The secret word is xylophone.\n");
    write(root, "huge.md", huge.as_bytes());
}

fn settings(dir: &Path) -> KnowledgeBaseSettings {
    KnowledgeBaseSettings {
        path: dir.join("kb"),
        index_path: dir.join("index"),
        watch: false,
        base_url: String::new(),
    }
}

#[test]
fn odd_markdown_loads_what_it_can_and_check_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    sample(&dir.path().join("kb"));
    let kb = KnowledgeBase::open(&settings(dir.path()), &|_, _| {}).unwrap();
    let slugs: Vec<String> = kb.articles().iter().map(|a| a.slug.clone()).collect();
    assert_eq!(
        slugs,
        vec!["billing/refunds", "broken-front", "huge", "no-heading"]
    );
    assert_eq!(kb.article("no-heading").unwrap().title, "no heading");
    assert_eq!(kb.search("xylophone", 3).unwrap()[0].slug, "huge");
    assert_eq!(kb.search("passwords", 3).unwrap()[0].slug, "broken-front");

    let (files, problems) = kb::check_folder(&dir.path().join("kb")).unwrap();
    assert_eq!(files, 6);
    let described: Vec<String> = problems
        .iter()
        .map(|p| {
            format!(
                "{}:{}",
                p.path.file_name().unwrap().to_string_lossy(),
                p.problem.line
            )
        })
        .collect();
    assert!(
        described.contains(&"binary.md:2".to_string()),
        "{described:?}"
    );
    assert!(
        described.contains(&"empty.md:1".to_string()),
        "{described:?}"
    );
    assert!(
        described.iter().any(|d| d.starts_with("broken-front.md:")),
        "{described:?}"
    );
    assert!(problems.iter().any(|p| p.problem.message.contains("UTF-8")));
}

#[test]
fn hostile_queries_never_error_and_do_not_match_everything() {
    let dir = tempfile::tempdir().unwrap();
    sample(&dir.path().join("kb"));
    let kb = KnowledgeBase::open(&settings(dir.path()), &|_, _| {}).unwrap();
    let junk: String = (0..10_000)
        .map(|i| ['"', ':', '(', ')', '[', ']', '*', '^', '~', '+', '-', 'x'][i % 12])
        .collect();
    for query in [
        "\"unbalanced quote",
        "title:refunds",
        "(refund",
        "[refund TO zzz]",
        "*^2",
        "+ - ~ ^ : ( )",
        "refund AND OR NOT",
        "",
        "\u{0}\u{1}\u{7f}",
        junk.as_str(),
    ] {
        let hits = kb
            .search(query, 10)
            .unwrap_or_else(|e| panic!("{query:?}: {e}"));
        assert!(
            hits.len() < kb.passages() as usize || kb.passages() <= 1,
            "{query:?} matched everything"
        );
    }
    assert!(kb.search("*^2", 10).unwrap().is_empty());
    assert_eq!(
        kb.search("refund\" (title:", 5).unwrap()[0].slug,
        "billing/refunds"
    );
}

#[test]
fn only_changed_articles_are_reindexed_and_the_index_persists() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("kb");
    sample(&root);
    let first = KnowledgeBase::open(&settings(dir.path()), &|_, _| {}).unwrap();
    drop(first);
    // Reopening finds everything already indexed.
    let kb = KnowledgeBase::open(&settings(dir.path()), &|_, _| {}).unwrap();
    let report = kb.reload().unwrap();
    assert_eq!((report.added, report.updated, report.removed), (0, 0, 0));
    assert_eq!(report.unchanged, 4);

    write(
        &root,
        "billing/refunds.md",
        b"# Refunds\n\n## Timing\nRefunds take exactly 3 days now.\n",
    );
    write(
        &root,
        "new.md",
        b"# Gift cards\n\nGift cards never expire.\n",
    );
    std::fs::remove_file(root.join("no-heading.md")).unwrap();
    let report = kb.reload().unwrap();
    assert_eq!(
        (
            report.added,
            report.updated,
            report.removed,
            report.unchanged
        ),
        (1, 1, 1, 2)
    );
    assert!(kb.search("invoices receipts", 5).unwrap().is_empty());
    assert_eq!(kb.search("gift cards", 5).unwrap()[0].slug, "new");
    let refunds = kb.search("refunds days", 5).unwrap();
    assert!(refunds[0].snippet.contains("exactly 3 days"), "{refunds:?}");
    assert_eq!(
        refunds
            .iter()
            .filter(|h| h.slug == "billing/refunds")
            .count(),
        1,
        "old passages are gone"
    );
}

#[test]
fn add_and_remove_articles() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("kb");
    sample(&root);
    let kb = KnowledgeBase::open(&settings(dir.path()), &|_, _| {}).unwrap();
    let new = dir.path().join("gift.md");
    std::fs::write(&new, "# Gift cards\n\nGift cards never expire.\n").unwrap();
    assert_eq!(
        kb.add(&new, Some("billing/gift-cards")).unwrap(),
        "billing/gift-cards"
    );
    assert!(root.join("billing/gift-cards.md").is_file());
    assert_eq!(kb.search("gift", 5).unwrap()[0].slug, "billing/gift-cards");
    kb.remove("billing/gift-cards").unwrap();
    assert!(kb.search("gift", 5).unwrap().is_empty());
    assert!(
        kb.remove("billing/gift-cards")
            .unwrap_err()
            .to_string()
            .contains("kb list")
    );
    let bad = dir.path().join("bad.md");
    std::fs::write(&bad, b"\xff\xfe").unwrap();
    let err = kb.add(&bad, None).unwrap_err().to_string();
    assert!(err.contains("bad.md:1") && err.contains("UTF-8"), "{err}");
    assert!(kb.add(&new, Some("../escape")).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_are_searchable_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("kb");
    sample(&root);
    let toml = format!(
        "[database]\nurl = \"sqlite://{}\"\n[knowledge_base]\npath = \"{}\"\nindex_path = \"{}\"\nwatch = true\n[prompts]\npath = \"{}\"\n[web]\nlisten = \"127.0.0.1:0\"\n",
        dir.path().join("t.db").display(),
        root.display(),
        dir.path().join("index").display(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/prompts"),
    );
    let app = App::build(Settings::from_toml_str(&toml).unwrap(), system())
        .await
        .unwrap();
    let kb = app.core().kb.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    // Give the watcher a moment to start.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let appears = |query: &'static str, slug: Option<&'static str>| {
        let kb = kb.clone();
        async move {
            for _ in 0..100 {
                let top = kb.search(query, 1).unwrap().first().map(|h| h.slug.clone());
                if top.as_deref() == slug {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        }
    };
    write(
        &root,
        "added.md",
        b"# Parrots\n\nParrots like sunflower seeds.\n",
    );
    assert!(
        appears("sunflower", Some("added")).await,
        "added article never became searchable"
    );
    write(&root, "added.md", b"# Parrots\n\nParrots prefer walnuts.\n");
    assert!(
        appears("walnuts", Some("added")).await,
        "edit never became searchable"
    );
    assert!(appears("sunflower", None).await, "old text still found");
    std::fs::remove_file(root.join("added.md")).unwrap();
    assert!(
        appears("walnuts", None).await,
        "deleted article still found"
    );

    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}
