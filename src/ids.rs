//! The ids of the conversation log as types of their own: a conversation,
//! a customer, a message and an agent cannot be passed for one another.
//!
//! Each wraps the id's text as the store keeps it (a UUID for the log's
//! rows; the configured or account name for an agent). They serialise as
//! plain strings and read as `&str` (`Deref`), so formatting, logging and
//! comparing with text need no conversion; making one from text is explicit
//! (`From`).

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id's text, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_string())
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                Self(id.clone())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

id_type!(
    /// A conversation (`conversations.id`).
    ConversationId
);
id_type!(
    /// A customer (`customers.id`; not the platform's id for them).
    CustomerId
);
id_type!(
    /// A stored message (`messages.id`; not the platform's message id).
    MessageId
);
id_type!(
    /// An agent: the name agents are configured or signed up under.
    AgentId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_reads_and_serialises_as_its_text() {
        let id = ConversationId::from("0190-abc");
        assert_eq!(id, "0190-abc");
        assert_eq!(id.len(), 8);
        assert_eq!(format!("{id}"), "0190-abc");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"0190-abc\"");
        let back: ConversationId = serde_json::from_str("\"0190-abc\"").unwrap();
        assert_eq!(back, id);
    }
}
