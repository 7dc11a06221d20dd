//! The driver's staff side: agents' buttons and messages in a staff place,
//! hand-off cards and the posts in their threads.

use super::{Platform, post_ref, retry, send_text};
use crate::agents::Agent;
use crate::button::{ButtonData, NO_LONGER_AVAILABLE};
use crate::channels::text;
use crate::delivery::{self, Button};
use crate::desk::{AgentAction, Card, Desk, PostedCard, StaffDesk};
use crate::ids::ConversationId;
use crate::store::Conversation;
use crate::suggest::{self, ChatCommand};

/// Someone in a staff place: the agent they are (if any) and how the log
/// names them (`telegram:42`).
pub struct StaffMember {
    /// The configured agent, if they are one.
    pub agent: Option<Agent>,
    /// Who they are on the platform.
    pub who: String,
}

impl StaffMember {
    /// The platform user `user_id`, who is `agent`.
    pub fn new<P: Platform>(agent: Option<Agent>, user_id: impl std::fmt::Display) -> Self {
        Self {
            agent,
            who: format!("{}:{user_id}", P::CHANNEL),
        }
    }

    /// Carries out `action` on `conversation` as this member; `Err` is
    /// what to tell them (`not_an_agent` when they are not one).
    async fn act<P: Platform>(
        &self,
        platform: &P,
        conversation: &ConversationId,
        action: AgentAction,
        not_an_agent: &str,
    ) -> Result<Conversation, String> {
        platform
            .core()
            .desk
            .act_in_chat(
                self.agent.as_ref(),
                &self.who,
                conversation,
                action,
                not_an_agent,
            )
            .await
    }
}

/// A Claim / Resolve / Give back button on a staff card: what to tell the
/// presser.
pub async fn staff_press<P: Platform>(
    platform: &P,
    data: &str,
    member: &StaffMember,
    not_an_agent: &str,
) -> String {
    let Some(ButtonData::Desk {
        action,
        conversation,
    }) = ButtonData::parse(data)
    else {
        return NO_LONGER_AVAILABLE.into();
    };
    member
        .act(platform, &conversation, action.into(), not_an_agent)
        .await
        .map_or_else(|e| e, |c| text::done(c.status))
}

/// An agent's message in a staff place.
pub struct StaffMessage<P: Platform> {
    /// Where it was written (answers go there).
    pub place: P::Place,
    /// Its text.
    pub text: String,
    /// Who wrote it.
    pub member: StaffMember,
    /// The staff thread it was written in, as the staff desk named it.
    pub thread: Option<String>,
    /// The bot's post it replies to ([`post_ref`]).
    pub replied: Option<String>,
    /// Whether to ask "which conversation?" when it is tied to none (it was
    /// a reply or in a thread, not chatter in the staff place).
    pub ask_which: bool,
}

/// An agent writing in a staff place: a reply to the customer or a desk
/// command, for the conversation of the thread or of the post replied to.
/// `which` and `not_an_agent` are the platform's explanations.
pub async fn agent_message<P: Platform>(
    platform: &P,
    message: StaffMessage<P>,
    which: &str,
    not_an_agent: &str,
) {
    let text = message.text.trim();
    if text.is_empty() {
        return;
    }
    let place = &message.place;
    let Some(conversation) = staff_conversation(platform, &message).await else {
        if message.ask_which {
            send_text(platform, place, which, Vec::new()).await;
        }
        return;
    };
    if let Some(command) = suggest::chat_command(text) {
        let answer = match command {
            Ok(ChatCommand::Suggest) => {
                suggest_in_chat(platform, &message.member, &conversation).await
            }
            Err(usage) => usage.to_string(),
        };
        return send_text(platform, place, &answer, Vec::new()).await;
    }
    let action = match Desk::parse_command(text) {
        Ok(a) => a,
        Err(help) => return send_text(platform, place, &help, Vec::new()).await,
    };
    if let Err(explain) = message
        .member
        .act(platform, &conversation, action, not_an_agent)
        .await
    {
        send_text(platform, place, &explain, Vec::new()).await;
    }
}

/// `/kb suggest` in a staff place: an admin (by their platform id, as
/// configured) drafts an article from the conversation; anyone else is
/// refused. Returns what to tell them.
async fn suggest_in_chat<P: Platform>(
    platform: &P,
    member: &StaffMember,
    conversation: &ConversationId,
) -> String {
    let Some(admin) = member.agent.as_ref().filter(|a| a.admin) else {
        tracing::warn!(
            who = %member.who,
            %conversation,
            "refused /kb suggest: not an admin"
        );
        return text::KB_SUGGEST_ADMINS_ONLY.into();
    };
    match suggest::suggest(&platform.core().assistant, conversation, &admin.name).await {
        Ok(made) => text::suggested(
            &made.suggestion.title,
            &made.suggestion.slug,
            made.suggestion.status.as_str(),
            made.created,
        ),
        Err(suggest::Error::Store(e)) => {
            tracing::error!(
                channel = P::CHANNEL,
                %conversation,
                "article suggestion failed: {e}"
            );
            text::NOT_STORED.into()
        }
        Err(e) => e.to_string(),
    }
}

/// The conversation a staff message is about, from stored mappings only:
/// its staff thread, or the bot's post (card, forwarded message, notice) it
/// replies to. Text in the replied message is never read: a customer may
/// have written it.
async fn staff_conversation<P: Platform>(
    platform: &P,
    message: &StaffMessage<P>,
) -> Option<ConversationId> {
    let store = &platform.core().store;
    if let Some(thread) = &message.thread {
        match store.conversation_by_staff_thread(P::CHANNEL, thread).await {
            Ok(Some(c)) => return Some(c.id),
            Ok(None) => {}
            Err(e) => tracing::warn!(channel = P::CHANNEL, "staff thread lookup failed: {e}"),
        }
    }
    let replied = message.replied.as_deref()?;
    match store.conversation_by_staff_post(P::CHANNEL, replied).await {
        Ok(found) => found.map(|c| c.id),
        Err(e) => {
            tracing::warn!(channel = P::CHANNEL, "staff post lookup failed: {e}");
            None
        }
    }
}

/// A platform whose agents work in a staff place (a group, a channel):
/// what differs there.
#[async_trait::async_trait]
pub trait StaffPlatform: Platform {
    /// Posts a hand-off card and opens its staff thread (a forum topic, a
    /// thread under the card, or replies to the card).
    ///
    /// # Errors
    /// A delivery error; the card is tried again later.
    async fn post_card(&self, card: &Card) -> Result<PostedCard, delivery::Error>;
    /// The place a staff thread reference (as `post_card` returned it)
    /// names.
    ///
    /// # Errors
    /// [`delivery::Error::Permanent`] for a reference that names none.
    fn staff_place(&self, thread_ref: &str) -> Result<Self::Place, delivery::Error>;
}

/// A platform's staff place as a [`StaffDesk`]: register
/// `Arc::new(Staff(platform))` with [`Desk::add_staff_desk`].
pub struct Staff<P>(pub P);

#[async_trait::async_trait]
impl<P: StaffPlatform> StaffDesk for Staff<P> {
    fn name(&self) -> &str {
        P::CHANNEL
    }

    async fn post_card(&self, card: &Card) -> Result<PostedCard, delivery::Error> {
        self.0.post_card(card).await
    }

    /// Agents answer by replying to any of the posts: each is remembered
    /// (by message id) as the conversation's.
    async fn post(
        &self,
        thread_ref: &str,
        _card: &Card,
        body: &str,
        notice: bool,
    ) -> Result<Vec<String>, delivery::Error> {
        let place = self.0.staff_place(thread_ref)?;
        post_to_staff(&self.0, &place, body, notice).await
    }
}

/// Posts `body` in a staff thread (a customer's message, or a notice when
/// `notice`), in parts; returns the posts' references, by which agents
/// reply.
///
/// # Errors
/// [`delivery::Error::Temporary`] when a part cannot be posted.
async fn post_to_staff<P: Platform>(
    platform: &P,
    place: &P::Place,
    body: &str,
    notice: bool,
) -> Result<Vec<String>, delivery::Error> {
    let prefix = if notice {
        text::NOTICE_PREFIX
    } else {
        text::CUSTOMER_PREFIX
    };
    let mut posts = Vec::new();
    for part in platform.render_text(&format!("{prefix}{body}")) {
        let id = retry::<P, _, _, _>(|| platform.send(place, &part, &[], None))
            .await
            .map_err(|e| delivery::Error::Temporary(e.to_string()))?;
        posts.push(post_ref::<P>(id));
    }
    Ok(posts)
}

/// Posts a rendered card (one message) with its buttons in a staff place.
///
/// # Errors
/// [`delivery::Error::Temporary`] when it cannot be posted.
pub async fn post_card<P: Platform>(
    platform: &P,
    place: &P::Place,
    body: &str,
    buttons: &[Vec<Button>],
) -> Result<P::Id, delivery::Error> {
    retry::<P, _, _, _>(|| platform.send(place, body, buttons, None))
        .await
        .map_err(|e| delivery::Error::Temporary(e.to_string()))
}
