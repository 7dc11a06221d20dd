//! The agents' side of a hand-off: the queue, claiming, replying, notes,
//! resolving, giving back and transferring, and keeping staff desks
//! (Telegram agents' group, Discord staff channel) in step.
//!
//! Everything is driven by the database, so it survives restarts and works
//! across processes: a conversation handed off by `switchboard chat` gets its
//! card posted by the `switchboard run` process; a customer message stored
//! while a desk was unreachable is forwarded when it is back. Staff desks
//! implement [`StaffDesk`]; the HTTP agent API calls [`Desk::act`] directly.
//!
//! The customer is told when an agent claims, transfers, gives back or
//! resolves (`prompts/joined.md`, `transferred.md`, `given_back.md`,
//! `resolved.md`): the notice is stored on the transition's event, so it
//! exists exactly when the change happened, and sent at most once (see
//! [`crate::transcript`] for where it is shown).

mod canned;
mod card;
mod notices;
mod sync;

pub use card::{Card, PostedCard, StaffDesk};

use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;

use crate::agents::{Agent, Agents};
use crate::button::DeskButton;
use crate::clock::Millis;
use crate::conversation::{Actor, EventKind, Resolution, Status, Transition};
use crate::delivery::{self, Outgoing, Registry, Retry, Target};
use crate::hours::BusinessHours;
use crate::ids::ConversationId;
use crate::store::{self, Change, Conversation, NewMessage, Role, Store};
use crate::templates::{Prompts, Template};

/// How long a notice may stay unsent before the desk loop sends it: the
/// action that recorded it sends it at once, so one older than this was
/// left by a process that stopped in between.
const NOTICE_GRACE_MS: Millis = 10_000;

/// Why an agent action was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The person is not a configured agent.
    #[error("{0} is not a configured agent; an admin can add them under [[agents]] in config.toml")]
    Unauthorized(String),
    /// No such conversation.
    #[error("no conversation {0}")]
    NotFound(String),
    /// Another agent got there first.
    #[error("{0} already has this conversation")]
    Taken(String),
    /// Another agent owns it.
    #[error("{0} owns this conversation; ask them to transfer it to you")]
    NotOwner(String),
    /// The action does not fit the conversation's state.
    #[error("the conversation is {0}; {1}")]
    WrongState(Status, &'static str),
    /// Transfer to someone who is not an agent.
    #[error("no agent named `{0}`")]
    NoSuchAgent(String),
    /// Unknown canned reply.
    #[error("no canned reply `{0}`; available: {1}")]
    NoSuchCanned(String, String),
    /// Empty reply or note.
    #[error("the text is empty")]
    Empty,
    /// The log failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// A template failed.
    #[error(transparent)]
    Prompt(#[from] crate::templates::Error),
}

/// What an agent does to a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentAction {
    /// Take it from the queue.
    Claim,
    /// Send text to the customer (claims a waiting conversation first).
    Reply(String),
    /// An internal note; never reaches the customer.
    Note(String),
    /// Send `prompts/canned/NAME.md` to the customer.
    Canned(String),
    /// Close it.
    Resolve,
    /// Hand it back to the bot.
    GiveBack,
    /// Pass it to another agent by name.
    Transfer(String),
}

impl From<DeskButton> for AgentAction {
    fn from(button: DeskButton) -> Self {
        match button {
            DeskButton::Claim => AgentAction::Claim,
            DeskButton::Resolve => AgentAction::Resolve,
            DeskButton::GiveBack => AgentAction::GiveBack,
        }
    }
}

/// The agents' desk. Cheap to clone.
#[derive(Clone)]
pub struct Desk {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    registry: Registry,
    agents: Agents,
    prompts: Prompts,
    hours: Option<BusinessHours>,
    reping_after: Millis,
    staff: RwLock<Vec<Arc<dyn StaffDesk>>>,
    poke: Notify,
    /// Counts changes the console shows (see [`Desk::changes`]).
    changes: tokio::sync::watch::Sender<u64>,
}

/// One entry of the queue, for the agent API.
#[derive(Debug, Clone, Serialize)]
pub struct QueueEntry {
    /// The conversation.
    #[serde(flatten)]
    pub conversation: Conversation,
    /// Customer's name or id.
    pub customer: String,
    /// Position among waiting conversations (1 = next).
    pub position: Option<i64>,
}

impl Desk {
    /// A desk over the log. `prompts` carry the common values
    /// (`product_name`); `hours` unset means always staffed.
    pub fn new(
        store: Store,
        registry: Registry,
        agents: Agents,
        prompts: Prompts,
        hours: Option<BusinessHours>,
        reping_after: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                registry,
                agents,
                prompts,
                hours,
                reping_after: reping_after.as_millis() as Millis,
                staff: RwLock::new(Vec::new()),
                poke: Notify::new(),
                changes: tokio::sync::watch::channel(0).0,
            }),
        }
    }

    /// Adds a staff desk (Telegram group, Discord channel).
    pub fn add_staff_desk(&self, desk: Arc<dyn StaffDesk>) {
        self.inner
            .staff
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(desk);
        self.poke();
    }

    /// The configured agents.
    pub fn agents(&self) -> &Agents {
        &self.inner.agents
    }

    /// The delivery registry (channels register themselves here).
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// Wakes the desk loop (after a hand-off, a customer message or an
    /// agent's action) and tells the consoles of this process.
    pub fn poke(&self) {
        self.inner.poke.notify_one();
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Ticks whenever something the inbox shows may have changed in this
    /// process (hand-offs, customers writing to agents, agents' actions);
    /// the console's event stream follows it. Changes made by another
    /// process on the same database are not seen here.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// When the team is back, if it is off now.
    pub fn back_at(&self) -> Option<String> {
        let now = chrono::DateTime::from_timestamp_millis(self.inner.store.now())?;
        self.inner.hours.as_ref()?.back_at(now)
    }

    fn render(&self, template: Template, extra: serde_json::Value) -> Result<String, Error> {
        Ok(self.inner.prompts.render(template, extra)?)
    }

    /// Waiting and claimed conversations, oldest hand-off first.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn queue(&self) -> Result<Vec<QueueEntry>, Error> {
        let store = &self.inner.store;
        let mut out = Vec::new();
        let mut position = 0;
        for c in store.handed_off().await? {
            let customer = store.customer(&c.customer_id).await?;
            let pos = (c.status == Status::WaitingForAgent).then(|| {
                position += 1;
                position
            });
            out.push(QueueEntry {
                customer: customer.display_name.unwrap_or(customer.external_id),
                position: pos,
                conversation: c,
            });
        }
        Ok(out)
    }

    /// Parses an agent's command typed in a staff thread: `/claim`,
    /// `/resolve`, `/giveback`, `/note TEXT`, `/canned NAME`, `/transfer
    /// NAME`; anything else is a reply to the customer.
    ///
    /// # Errors
    /// A one-line help for an unknown command.
    pub fn parse_command(text: &str) -> Result<AgentAction, String> {
        let text = text.trim();
        let Some(rest) = text.strip_prefix('/') else {
            return Ok(AgentAction::Reply(text.to_string()));
        };
        let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let name = name.split('@').next().unwrap_or(name).to_ascii_lowercase();
        let args = args.trim().to_string();
        Ok(match name.as_str() {
            "claim" => AgentAction::Claim,
            "resolve" | "close" => AgentAction::Resolve,
            "giveback" | "give_back" | "bot" => AgentAction::GiveBack,
            "note" => AgentAction::Note(args),
            "canned" => AgentAction::Canned(args),
            "transfer" => AgentAction::Transfer(args),
            "reply" => AgentAction::Reply(args),
            other => {
                return Err(format!(
                    "unknown command /{other}; use /claim, /resolve, /giveback, /note TEXT, /canned NAME, /transfer AGENT, or write to reply"
                ));
            }
        })
    }

    /// [`Desk::act`] for a staff chat: the outcome as the text to show
    /// there. `Ok` is the conversation after the action; `Err` is what to
    /// tell the person, `not_an_agent` when they are not one.
    ///
    /// # Errors
    /// The explanation of a refused or failed action.
    pub async fn act_in_chat(
        &self,
        agent: Option<&Agent>,
        who: &str,
        conversation_id: &ConversationId,
        action: AgentAction,
        not_an_agent: &str,
    ) -> Result<Conversation, String> {
        match self.act(agent, who, conversation_id, action).await {
            Ok(c) => Ok(c),
            Err(Error::Unauthorized(_)) => Err(not_an_agent.to_string()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Carries out `action` on a conversation for `agent` (`None` when the
    /// person is not an agent: refused, and the refusal is logged).
    ///
    /// # Errors
    /// [`Error`] explaining the refusal.
    pub async fn act(
        &self,
        agent: Option<&Agent>,
        who: &str,
        conversation_id: &ConversationId,
        action: AgentAction,
    ) -> Result<Conversation, Error> {
        let store = &self.inner.store;
        let conversation = match store.conversation(conversation_id).await {
            Ok(c) => c,
            Err(store::Error::NotFound { .. }) => {
                return Err(Error::NotFound(conversation_id.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        let Some(agent) = agent else {
            tracing::warn!(
                who,
                conversation = %conversation_id,
                ?action,
                "refused: not an agent"
            );
            store
                .record_event(
                    conversation_id,
                    EventKind::Refused,
                    Actor::Stranger(who),
                    Some(&format!("{action:?}")),
                )
                .await?;
            return Err(Error::Unauthorized(who.to_string()));
        };
        let result = self.apply(agent, conversation, action).await;
        self.poke();
        result
    }

    async fn apply(
        &self,
        agent: &Agent,
        conversation: Conversation,
        action: AgentAction,
    ) -> Result<Conversation, Error> {
        let store = &self.inner.store;
        let name = agent.name.as_str();
        // What the customer sees; `name` is who it is.
        let shown = agent.display_name();
        match action {
            AgentAction::Claim => self.claim(agent, &conversation).await,
            AgentAction::Note(text) => {
                if text.trim().is_empty() {
                    return Err(Error::Empty);
                }
                let note = NewMessage {
                    conversation_id: &conversation.id,
                    role: Role::Note,
                    author: Some(name),
                    text: text.trim(),
                    channel: "desk",
                    ..NewMessage::default()
                };
                store.insert_message(&note).await?;
                Ok(conversation)
            }
            AgentAction::Canned(canned) => {
                let text = self.canned(&canned, shown)?;
                Box::pin(self.apply(agent, conversation, AgentAction::Reply(text))).await
            }
            AgentAction::Reply(text) => {
                if text.trim().is_empty() {
                    return Err(Error::Empty);
                }
                let conversation = match conversation.status {
                    Status::WaitingForAgent => self.claim(agent, &conversation).await?,
                    Status::WithAgent => {
                        self.check_owner(agent, &conversation)?;
                        conversation
                    }
                    s => {
                        return Err(Error::WrongState(
                            s,
                            "only conversations handed to people take agent replies",
                        ));
                    }
                };
                let message = NewMessage {
                    conversation_id: &conversation.id,
                    role: Role::Agent,
                    author: Some(name),
                    text: text.trim(),
                    channel: &conversation.channel,
                    ..NewMessage::default()
                };
                store.insert_message(&message).await?;
                self.send_to_customer(
                    &conversation,
                    &Outgoing::text(format!("{shown} (support): {}", text.trim())),
                )
                .await?;
                Ok(store.conversation(&conversation.id).await?)
            }
            AgentAction::Resolve => {
                if conversation.status == Status::WithAgent {
                    self.check_owner(agent, &conversation)?;
                }
                let notice =
                    self.render(Template::Resolved, serde_json::json!({"agent": shown}))?;
                let change = Change {
                    resolution: Some(&Resolution::Agent),
                    actor_name: Some(shown),
                    notice: Some(&notice),
                    ..Change::default()
                };
                self.transition(&conversation, Transition::Resolve, name, &change)
                    .await
            }
            AgentAction::GiveBack => {
                if conversation.status == Status::WithAgent {
                    self.check_owner(agent, &conversation)?;
                }
                let notice =
                    self.render(Template::GivenBack, serde_json::json!({"agent": shown}))?;
                let told = Change {
                    actor_name: Some(shown),
                    notice: Some(&notice),
                    ..Change::default()
                };
                let (transition, change) = match conversation.status {
                    Status::WaitingForAgent => (Transition::Withdraw, told),
                    _ => (
                        Transition::GiveBack,
                        Change {
                            assign: Some(None),
                            ..told
                        },
                    ),
                };
                self.transition(&conversation, transition, name, &change)
                    .await
            }
            AgentAction::Transfer(to) => {
                let to = to.trim();
                let target = self
                    .inner
                    .agents
                    .by_name(to)
                    .ok_or_else(|| Error::NoSuchAgent(to.to_string()))?;
                let conversation = match conversation.status {
                    Status::WaitingForAgent => self.claim(agent, &conversation).await?,
                    _ => conversation,
                };
                if conversation.status == Status::WithAgent {
                    self.check_owner(agent, &conversation)?;
                }
                if conversation.status == Status::WithAgent
                    && conversation.assigned_agent.as_deref() == Some(target.name.as_str())
                {
                    // Already theirs (a repeated transfer): nothing changes,
                    // and the customer is not told again.
                    return Ok(conversation);
                }
                let detail = format!("to {}", target.name);
                let notice = self.render(
                    Template::Transferred,
                    serde_json::json!({"agent": shown, "to": target.display_name()}),
                )?;
                let change = Change {
                    assign: Some(Some(&target.name)),
                    event_detail: Some(&detail),
                    actor_name: Some(shown),
                    notice: Some(&notice),
                    ..Change::default()
                };
                self.transition(&conversation, Transition::Transfer, name, &change)
                    .await
            }
        }
    }

    async fn claim(
        &self,
        agent: &Agent,
        conversation: &Conversation,
    ) -> Result<Conversation, Error> {
        if conversation.status == Status::WithAgent {
            return match conversation.assigned_agent.as_deref() {
                Some(owner) if owner == agent.name => Ok(conversation.clone()),
                Some(owner) => Err(Error::Taken(owner.to_string())),
                None => Err(Error::WrongState(
                    conversation.status,
                    "it has no owner; give it back first",
                )),
            };
        }
        let notice = self.render(
            Template::Joined,
            serde_json::json!({"agent": agent.display_name()}),
        )?;
        let change = Change {
            assign: Some(Some(&agent.name)),
            actor_name: Some(agent.display_name()),
            notice: Some(&notice),
            ..Change::default()
        };
        self.transition(conversation, Transition::Claim, &agent.name, &change)
            .await
    }

    fn check_owner(&self, agent: &Agent, conversation: &Conversation) -> Result<(), Error> {
        match conversation.assigned_agent.as_deref() {
            Some(owner) if owner != agent.name && !agent.admin => {
                Err(Error::NotOwner(owner.to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Applies `transition`; when it happened (this call won), the
    /// customer is sent the notice stored with it before anything else
    /// (an agent's reply that follows a claim comes after "… joined").
    async fn transition(
        &self,
        conversation: &Conversation,
        transition: Transition,
        agent: &str,
        change: &Change<'_>,
    ) -> Result<Conversation, Error> {
        let store = &self.inner.store;
        match store
            .transition(&conversation.id, transition, Actor::Agent(agent), change)
            .await
        {
            Ok(c) => {
                self.send_notices(&c).await?;
                Ok(c)
            }
            // Someone else moved it first (between our read and the
            // guarded update, or before the store's own read).
            Err(e @ (store::Error::Conflict(_) | store::Error::Illegal(_))) => {
                let now = store.conversation(&conversation.id).await?;
                match (transition, now.status, now.assigned_agent) {
                    (Transition::Claim, Status::WithAgent, Some(owner)) => {
                        Err(Error::Taken(owner.into_string()))
                    }
                    (_, status, _) if matches!(e, store::Error::Conflict(_)) => Err(
                        Error::WrongState(status, "it changed meanwhile; reload and try again"),
                    ),
                    (_, status, _) => {
                        Err(Error::WrongState(status, "that action does not apply now"))
                    }
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}
