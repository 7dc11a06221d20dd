//! Checks the fake Discord against the real serenity client: its payloads
//! parse as serenity's models, a serenity `Client` receives events through
//! its gateway (also across RECONNECT/RESUME and dropped sockets), and
//! serenity's `Http` calls succeed against its REST API.

use std::time::Duration;

use serde_json::{Value, json};
use serenity::all::{
    ButtonStyle, ChannelId, ChannelType, Client, ClientBuilder, CommandInteraction,
    ComponentInteraction, Context, CreateActionRow, CreateAttachment, CreateButton, CreateCommand,
    CreateCommandOption, CreateForumPost, CreateInteractionResponse,
    CreateInteractionResponseFollowup, CreateInteractionResponseMessage, CreateMessage,
    CreateThread, EditInteractionResponse, EditMessage, EventHandler, GatewayIntents, GuildChannel,
    HttpBuilder, Interaction, Message, MessageId, Ready, ResumedEvent, ShardManager, UserId,
};
use serenity::model::event::Event;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use switchboard_fakes::discord_fake::{self, BOT_ID, FakeDiscord, MessageOpts, TOKEN};
use tokio::sync::mpsc;

/// `resume` handler calls (only one test runs a client).
static RESUMED_EVENTS: AtomicUsize = AtomicUsize::new(0);

const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum Ev {
    Ready(Box<Ready>),
    Message(Box<Message>),
    Interaction(Box<Interaction>),
    Thread(Box<GuildChannel>),
    Resumed,
}

struct Handler {
    tx: mpsc::UnboundedSender<Ev>,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _: Context, ready: Ready) {
        let _ = self.tx.send(Ev::Ready(Box::new(ready)));
    }
    async fn message(&self, _: Context, msg: Message) {
        let _ = self.tx.send(Ev::Message(Box::new(msg)));
    }
    async fn interaction_create(&self, _: Context, interaction: Interaction) {
        let _ = self.tx.send(Ev::Interaction(Box::new(interaction)));
    }
    async fn thread_create(&self, _: Context, thread: GuildChannel) {
        let _ = self.tx.send(Ev::Thread(Box::new(thread)));
    }
    async fn resume(&self, _: Context, _: ResumedEvent) {
        RESUMED_EVENTS.fetch_add(1, Ordering::SeqCst);
        let _ = self.tx.send(Ev::Resumed);
    }
}

async fn start_client(fake: &FakeDiscord) -> (mpsc::UnboundedReceiver<Ev>, Arc<ShardManager>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let http = HttpBuilder::new(TOKEN)
        .proxy(&fake.url)
        .ratelimiter_disabled(true)
        .build();
    let intents = GatewayIntents::GUILDS
        | GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT;
    let mut client: Client = ClientBuilder::new_with_http(http, intents)
        .event_handler(Handler { tx })
        .await
        .expect("client");
    let shards = client.shard_manager.clone();
    tokio::spawn(async move {
        let _ = client.start().await;
    });
    (rx, shards)
}

/// The next event `pick` accepts (others are skipped).
async fn next<T>(rx: &mut mpsc::UnboundedReceiver<Ev>, pick: impl Fn(Ev) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = rx.recv().await.expect("handler channel closed");
            if let Some(t) = pick(ev) {
                return t;
            }
        }
    })
    .await
    .expect("timed out waiting for a serenity event")
}

async fn next_message(rx: &mut mpsc::UnboundedReceiver<Ev>) -> Message {
    *next(rx, |e| match e {
        Ev::Message(m) => Some(m),
        _ => None,
    })
    .await
}

async fn next_interaction(rx: &mut mpsc::UnboundedReceiver<Ev>) -> Interaction {
    *next(rx, |e| match e {
        Ev::Interaction(i) => Some(i),
        _ => None,
    })
    .await
}

fn parse_event(name: &str, data: &Value) -> Event {
    serde_json::from_value::<Event>(json!({"t": name, "d": data}))
        .unwrap_or_else(|e| panic!("{name} does not parse: {e}\n{data:#}"))
}

#[tokio::test]
async fn builders_parse_as_serenity_models() {
    let fake = FakeDiscord::start().await;

    let m = fake.message(11, 20, Some(1), 42, "hello");
    let parsed: Message = serde_json::from_value(m.clone()).unwrap();
    assert_eq!(parsed.content, "hello");
    assert_eq!(parsed.author.id, UserId::new(42));
    assert!(!parsed.author.bot);
    assert_eq!(parsed.guild_id.map(|g| g.get()), Some(1));
    assert!(matches!(
        parse_event("MESSAGE_CREATE", &m),
        Event::MessageCreate(_)
    ));

    let dm = fake.message(12, 21, None, 43, "in a DM");
    let parsed: Message = serde_json::from_value(dm).unwrap();
    assert!(parsed.guild_id.is_none());

    let rich = fake.message_with(
        13,
        20,
        Some(1),
        42,
        "look at this",
        MessageOpts {
            mention_bot: true,
            mentions: vec![77],
            reply_to: Some(11),
            attachments: vec![("shot.png".into(), "image/png".into())],
            ..MessageOpts::default()
        },
    );
    let parsed: Message = serde_json::from_value(rich.clone()).unwrap();
    assert!(parsed.mentions_user_id(UserId::new(BOT_ID)));
    assert!(parsed.content.starts_with(&format!("<@{BOT_ID}>")));
    assert_eq!(parsed.attachments[0].filename, "shot.png");
    let reference = parsed.message_reference.as_ref().unwrap();
    assert_eq!(reference.message_id, Some(MessageId::new(11)));
    assert_eq!(parsed.referenced_message.as_ref().unwrap().content, "hello");
    parse_event("MESSAGE_CREATE", &rich);

    let bot = fake.message_with(
        14,
        20,
        Some(1),
        44,
        "beep",
        MessageOpts {
            author_bot: true,
            ..MessageOpts::default()
        },
    );
    assert!(serde_json::from_value::<Message>(bot).unwrap().author.bot);
    let hook = fake.message_with(
        15,
        20,
        Some(1),
        45,
        "from a webhook",
        MessageOpts {
            webhook_id: Some(99),
            ..MessageOpts::default()
        },
    );
    assert_eq!(
        serde_json::from_value::<Message>(hook)
            .unwrap()
            .webhook_id
            .map(|w| w.get()),
        Some(99)
    );

    for guild in [Some(1), None] {
        let c = fake.command_interaction(500, 20, guild, 42, "ticket", &[("topic", "billing")]);
        let Interaction::Command(cmd) = serde_json::from_value::<Interaction>(c.clone()).unwrap()
        else {
            panic!("not a command interaction")
        };
        assert_eq!(cmd.data.name, "ticket");
        assert_eq!(cmd.user.id, UserId::new(42));
        assert_eq!(cmd.data.options[0].value.as_str(), Some("billing"));
        assert_eq!(cmd.guild_id.map(|g| g.get()), guild);
        parse_event("INTERACTION_CREATE", &c);

        let b = fake.component_interaction(501, 20, guild, 42, 12345, "close:7");
        let Interaction::Component(comp) =
            serde_json::from_value::<Interaction>(b.clone()).unwrap()
        else {
            panic!("not a component interaction")
        };
        assert_eq!(comp.data.custom_id, "close:7");
        assert_eq!(comp.message.id, MessageId::new(12345));
        assert_eq!(comp.user.id, UserId::new(42));
        parse_event("INTERACTION_CREATE", &b);
    }
    let s = fake.select_interaction(502, 20, Some(1), 42, 12345, "rate", &["5"]);
    assert!(matches!(
        serde_json::from_value::<Interaction>(s).unwrap(),
        Interaction::Component(_)
    ));

    let (thread, first) = fake.forum_post(600, 30, 1, 42, "Printer on fire", "It is on fire");
    let Event::ThreadCreate(t) = parse_event("THREAD_CREATE", &thread) else {
        panic!("not THREAD_CREATE")
    };
    assert_eq!(t.thread.kind, ChannelType::PublicThread);
    assert_eq!(t.thread.parent_id, Some(ChannelId::new(30)));
    assert_eq!(t.thread.name, "Printer on fire");
    let first: Message = serde_json::from_value(first).unwrap();
    assert_eq!(first.id.get(), 600);
    assert_eq!(first.channel_id.get(), 600);
    // GET /channels/{forum} says it is a forum.
    let forum = fake.http().get_channel(ChannelId::new(30)).await.unwrap();
    assert_eq!(forum.guild().unwrap().kind, ChannelType::Forum);
}

#[tokio::test]
async fn serenity_client_gets_events_and_survives_reconnects() {
    let fake = FakeDiscord::start().await;
    let (mut rx, shards) = start_client(&fake).await;

    let ready = next(&mut rx, |e| match e {
        Ev::Ready(r) => Some(r),
        _ => None,
    })
    .await;
    assert_eq!(ready.user.id, UserId::new(BOT_ID));
    assert_eq!(ready.application.id.get(), discord_fake::APPLICATION_ID);
    assert_eq!(fake.identify_count(), 1);
    assert_eq!(fake.gateway_queries(), vec!["v=10".to_string()]);
    let intents = fake.intents().unwrap();
    assert_ne!(intents & GatewayIntents::MESSAGE_CONTENT.bits(), 0);
    // serenity sends the token with its "Bot " prefix in IDENTIFY too.
    assert_eq!(
        fake.identify_payloads()[0]["token"],
        json!(format!("Bot {TOKEN}"))
    );

    fake.dispatch_message(1, 20, Some(1), 42, "first").await;
    let m = next_message(&mut rx).await;
    assert_eq!(m.content, "first");
    assert_eq!(m.guild_id.map(|g| g.get()), Some(1));

    let c = fake.command_interaction(700, 20, Some(1), 42, "ticket", &[("topic", "x")]);
    fake.dispatch("INTERACTION_CREATE", c).await;
    let Interaction::Command(cmd) = next_interaction(&mut rx).await else {
        panic!("expected a command")
    };
    assert_eq!(cmd.data.name, "ticket");

    let b = fake.component_interaction(701, 20, None, 42, 555, "btn");
    fake.dispatch("INTERACTION_CREATE", b).await;
    let Interaction::Component(comp) = next_interaction(&mut rx).await else {
        panic!("expected a component")
    };
    assert_eq!(comp.data.custom_id, "btn");

    fake.dispatch_forum_post(800, 30, 1, 42, "Help", "Body")
        .await;
    let t = next(&mut rx, |e| match e {
        Ev::Thread(t) => Some(t),
        _ => None,
    })
    .await;
    assert_eq!(t.id.get(), 800);
    assert_eq!(next_message(&mut rx).await.content, "Body");

    // RECONNECT: an event sent while the bot is away is replayed on RESUME.
    fake.request_reconnect().await;
    fake.dispatch_message(2, 20, Some(1), 42, "while away")
        .await;
    assert_eq!(next_message(&mut rx).await.content, "while away");
    fake.wait_resumed(1, WAIT).await;
    fake.dispatch_message(3, 20, Some(1), 42, "after resume")
        .await;
    assert_eq!(next_message(&mut rx).await.content, "after resume");
    assert_eq!(fake.resume_count(), 1);
    assert_eq!(fake.identify_count(), 1);

    // A dropped socket: serenity resumes too.
    fake.drop_connection().await;
    fake.dispatch_message(4, 20, Some(1), 42, "after drop")
        .await;
    assert_eq!(next_message(&mut rx).await.content, "after drop");
    fake.wait_resumed(2, WAIT).await;
    assert_eq!(fake.identify_count(), 1);

    // A close frame with a resumable code.
    fake.close_connection(4000).await;
    fake.wait_resumed(3, WAIT).await;
    fake.dispatch_message(5, 20, Some(1), 42, "after close")
        .await;
    assert_eq!(next_message(&mut rx).await.content, "after close");
    fake.wait_until(
        "three `resume` handler calls",
        |_| RESUMED_EVENTS.load(Ordering::SeqCst) == 3,
        WAIT,
    )
    .await;

    // Heartbeats are answered.
    fake.wait_until("a heartbeat", |f| f.heartbeat_count() > 0, WAIT)
        .await;

    shards.shutdown_all().await;
    fake.assert_no_unknown_routes();
}

#[tokio::test]
async fn serenity_http_calls_succeed() {
    let fake = FakeDiscord::start().await;
    let http = fake.http();

    let me = http.get_current_user().await.unwrap();
    assert_eq!(me.id, UserId::new(BOT_ID));
    let app = http.get_current_application_info().await.unwrap();
    assert_eq!(app.id.get(), discord_fake::APPLICATION_ID);
    http.get_gateway().await.unwrap();
    http.get_bot_gateway().await.unwrap();

    // Messages: send with buttons, reply, edit, delete.
    let channel = ChannelId::new(20);
    fake.message(11, 20, Some(1), 42, "question");
    let sent = channel
        .send_message(
            &http,
            CreateMessage::new()
                .content("hi there")
                .reference_message((channel, MessageId::new(11)))
                .components(vec![CreateActionRow::Buttons(vec![
                    CreateButton::new("close:1")
                        .label("Close")
                        .style(ButtonStyle::Danger),
                    CreateButton::new_link("https://example.com").label("Docs"),
                ])]),
        )
        .await
        .unwrap();
    assert_eq!(sent.content, "hi there");
    assert_eq!(sent.components.len(), 1);
    assert_eq!(
        sent.message_reference.unwrap().message_id,
        Some(MessageId::new(11))
    );
    let edited = channel
        .edit_message(
            &http,
            sent.id,
            EditMessage::new().content("hi there, edited"),
        )
        .await
        .unwrap();
    assert!(edited.edited_timestamp.is_some());
    channel.broadcast_typing(&http).await.unwrap();
    assert_eq!(fake.typing_count(20), 1);

    let msgs = fake.channel_messages(20);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].content, "hi there, edited");
    assert_eq!(msgs[0].original_content, "hi there");
    assert_eq!(msgs[0].edits, vec!["hi there, edited".to_string()]);
    assert_eq!(msgs[0].custom_ids(), vec!["close:1".to_string()]);

    // A button press on that message carries the message with its buttons.
    let b = fake.component_interaction(900, 20, Some(1), 42, sent.id.get(), "close:1");
    let comp: ComponentInteraction = match serde_json::from_value(b).unwrap() {
        Interaction::Component(c) => c,
        _ => unreachable!(),
    };
    assert_eq!(comp.message.content, "hi there, edited");
    assert_eq!(comp.message.components.len(), 1);

    // Files go as multipart; the fake reads payload_json.
    let with_file = channel
        .send_message(
            &http,
            CreateMessage::new()
                .content("transcript")
                .add_file(CreateAttachment::bytes(b"line 1\n".to_vec(), "t.txt")),
        )
        .await
        .unwrap();
    assert_eq!(with_file.attachments[0].filename, "t.txt");
    let r = fake
        .wait_for(|r| r.files == ["t.txt"], Duration::from_secs(1))
        .await;
    assert_eq!(r.body["content"], "transcript");

    channel.delete_message(&http, with_file.id).await.unwrap();
    assert_eq!(fake.channel_messages(20).len(), 1);
    assert_eq!(fake.deleted_message_ids(20), vec![with_file.id.get()]);
    // Someone else's message cannot be edited.
    let err = channel
        .edit_message(&http, MessageId::new(11), EditMessage::new().content("x"))
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("50005"), "{err:?}");
    // Empty messages are refused like Discord does.
    let err = http
        .send_message(channel, vec![], &json!({"content": ""}))
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("50006"), "{err:?}");

    // DMs.
    let dm = UserId::new(42).create_dm_channel(&http).await.unwrap();
    assert_eq!(dm.recipient.id, UserId::new(42));
    let dm2 = UserId::new(42).create_dm_channel(&http).await.unwrap();
    assert_eq!(dm.id, dm2.id);
    let sent_dm = dm.id.say(&http, "psst").await.unwrap();
    assert_eq!(fake.channel_messages(dm.id.get())[0].id, sent_dm.id.get());

    // Threads.
    let thread = channel
        .create_thread_from_message(&http, sent.id, CreateThread::new("Ticket #1"))
        .await
        .unwrap();
    assert_eq!(thread.id.get(), sent.id.get());
    assert_eq!(thread.parent_id, Some(channel));
    assert_eq!(thread.kind, ChannelType::PublicThread);
    let thread2 = channel
        .create_thread(
            &http,
            CreateThread::new("Ticket #2").kind(ChannelType::PrivateThread),
        )
        .await
        .unwrap();
    assert_eq!(thread2.kind, ChannelType::PrivateThread);
    let post = ChannelId::new(30)
        .create_forum_post(
            &http,
            CreateForumPost::new("Outage", CreateMessage::new().content("We are on it")),
        )
        .await
        .unwrap();
    assert_eq!(
        fake.channel_messages(post.id.get())[0].content,
        "We are on it"
    );
    assert_eq!(fake.channel_messages(post.id.get())[0].id, post.id.get());
    let got = http.get_channel(thread.id).await.unwrap();
    assert_eq!(got.guild().unwrap().parent_id, Some(channel));

    // Commands.
    let cmds = serenity::all::Command::set_global_commands(
        &http,
        vec![
            CreateCommand::new("ticket")
                .description("Open a ticket")
                .add_option(
                    CreateCommandOption::new(
                        serenity::all::CommandOptionType::String,
                        "topic",
                        "What about",
                    )
                    .required(true),
                ),
        ],
    )
    .await
    .unwrap();
    assert_eq!(cmds[0].name, "ticket");
    assert_eq!(fake.global_commands().len(), 1);
    let guild_cmds = serenity::all::GuildId::new(1)
        .set_commands(
            &http,
            vec![CreateCommand::new("close").description("Close")],
        )
        .await
        .unwrap();
    assert_eq!(guild_cmds[0].guild_id.map(|g| g.get()), Some(1));
    // The interaction for a registered command carries its id.
    let c = fake.command_interaction(901, 20, Some(1), 42, "ticket", &[]);
    assert_eq!(c["data"]["id"], json!(cmds[0].id.get().to_string()));

    fake.assert_no_unknown_routes();
}

#[tokio::test]
async fn interactions_respond_like_discord() {
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    let as_command = |v: Value| -> CommandInteraction {
        match serde_json::from_value(v).unwrap() {
            Interaction::Command(c) => c,
            _ => unreachable!(),
        }
    };

    // Deferred, then edited, then a follow-up (ephemeral) edited too.
    let cmd = as_command(fake.command_interaction(1, 20, Some(1), 42, "ticket", &[]));
    cmd.defer(&http).await.unwrap();
    assert!(fake.original_response(1).unwrap().loading());
    let edited = cmd
        .edit_response(
            &http,
            EditInteractionResponse::new().content("Ticket opened"),
        )
        .await
        .unwrap();
    assert_eq!(edited.content, "Ticket opened");
    let original = fake.original_response(1).unwrap();
    assert!(!original.loading());
    assert_eq!(original.content, "Ticket opened");
    assert_eq!(original.interaction_id, Some(1));
    let follow = cmd
        .create_followup(
            &http,
            CreateInteractionResponseFollowup::new()
                .content("only you")
                .ephemeral(true),
        )
        .await
        .unwrap();
    cmd.edit_followup(
        &http,
        follow.id,
        CreateInteractionResponseFollowup::new().content("only you, edited"),
    )
    .await
    .unwrap();
    let f = &fake.followups(1)[0];
    assert!(f.ephemeral());
    assert_eq!(f.content, "only you, edited");
    assert_eq!(fake.interaction_callback_types(1), vec![5]);
    // A second acknowledgement fails like on Discord.
    let err = cmd.defer(&http).await.unwrap_err();
    assert!(format!("{err:?}").contains("40060"), "{err:?}");
    assert_eq!(fake.interaction_callback_types(1), vec![5, 5]);

    // An immediate message response.
    let cmd = as_command(fake.command_interaction(2, 20, None, 42, "help", &[]));
    cmd.create_response(
        &http,
        CreateInteractionResponse::Message(
            CreateInteractionResponseMessage::new()
                .content("Here is help")
                .components(vec![CreateActionRow::Buttons(vec![
                    CreateButton::new("rate:5").label("5"),
                ])]),
        ),
    )
    .await
    .unwrap();
    let original = fake.original_response(2).unwrap();
    assert_eq!(original.content, "Here is help");
    let got = cmd.get_response(&http).await.unwrap();
    assert_eq!(got.id.get(), original.id);

    // A button on that response: UpdateMessage edits it in place.
    let comp: ComponentInteraction = match serde_json::from_value(fake.component_interaction(
        3,
        20,
        None,
        42,
        original.id,
        "rate:5",
    ))
    .unwrap()
    {
        Interaction::Component(c) => c,
        _ => unreachable!(),
    };
    assert_eq!(comp.message.content, "Here is help");
    comp.create_response(
        &http,
        CreateInteractionResponse::UpdateMessage(
            CreateInteractionResponseMessage::new()
                .content("Thanks!")
                .components(vec![]),
        ),
    )
    .await
    .unwrap();
    let updated = fake.message_by_id(original.id).unwrap();
    assert_eq!(updated.content, "Thanks!");
    assert!(updated.custom_ids().is_empty());
    assert_eq!(fake.interaction_callback_types(3), vec![7]);

    // Acknowledge (type 6), then edit the original = the component's message.
    let comp: ComponentInteraction =
        match serde_json::from_value(fake.component_interaction(4, 20, None, 42, original.id, "x"))
            .unwrap()
        {
            Interaction::Component(c) => c,
            _ => unreachable!(),
        };
    comp.create_response(&http, CreateInteractionResponse::Acknowledge)
        .await
        .unwrap();
    comp.edit_response(
        &http,
        EditInteractionResponse::new().content("Thanks again"),
    )
    .await
    .unwrap();
    assert_eq!(
        fake.message_by_id(original.id).unwrap().edits,
        vec!["Thanks!".to_string(), "Thanks again".to_string()]
    );

    // Too late: Discord forgets interactions not answered within 3 s.
    fake.set_interaction_deadline(Some(Duration::from_millis(50)));
    let cmd = as_command(fake.command_interaction(5, 20, Some(1), 42, "ticket", &[]));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = cmd.defer(&http).await.unwrap_err();
    assert!(format!("{err:?}").contains("10062"), "{err:?}");

    fake.assert_no_unknown_routes();
}

#[tokio::test]
async fn failures_and_unknown_routes() {
    let fake = FakeDiscord::start().await;
    let http = fake.http();
    let channel = ChannelId::new(20);

    fake.fail_next("POST /channels/20/messages", 429, 1);
    let err = channel.say(&http, "hi").await.unwrap_err();
    let serenity::Error::Http(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.status_code().map(|s| s.as_u16()), Some(429));
    fake.fail_next("/channels/20/messages", 500, 1);
    let err = channel.say(&http, "hi").await.unwrap_err();
    let serenity::Error::Http(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(e.status_code().map(|s| s.as_u16()), Some(500));
    channel.say(&http, "hi").await.unwrap();
    let statuses: Vec<u16> = fake
        .requests_to("POST", "/channels/20/messages")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![429, 500, 200]);
    assert_eq!(fake.channel_messages(20).len(), 1);

    // Too long.
    let err = http
        .send_message(channel, vec![], &json!({"content": "x".repeat(2001)}))
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").contains("BASE_TYPE_MAX_LENGTH"),
        "{err:?}"
    );

    // Unknown routes are answered 404 and listed.
    assert!(
        http.get_guild(serenity::all::GuildId::new(1))
            .await
            .is_err()
    );
    let unknown = fake.unknown_routes();
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].path, "/guilds/1");
}
