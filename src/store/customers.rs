//! Customers: who writes, on which channel, and whether they can be reached.

use super::*;

impl Store {
    /// Finds or creates the customer known on `channel` as `external_id`.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn upsert_customer(
        &self,
        channel: &str,
        external_id: &str,
        display_name: Option<&str>,
    ) -> Result<Customer, Error> {
        // Most messages come from a customer already known by the same
        // name: a read, which needs neither the writer nor a transaction.
        if let Some(known) = self.find_customer(channel, external_id).await?
            && display_name.is_none_or(|name| known.display_name.as_deref() == Some(name))
        {
            return Ok(known);
        }
        self.write_customer(channel, external_id, display_name)
            .await
    }

    /// The customer of a message in `thread_key` (created, or their name
    /// updated, as [`Store::upsert_customer`]) and their open conversation
    /// there, if any: for a known customer one read instead of two.
    ///
    /// # Errors
    /// On a database failure.
    pub async fn customer_in_thread(
        &self,
        channel: &str,
        external_id: &str,
        display_name: Option<&str>,
        thread_key: &str,
    ) -> Result<(Customer, Option<Conversation>), Error> {
        let row = sqlx::query(
            "SELECT cu.id AS cu_id, cu.channel AS cu_channel, cu.external_id AS cu_external_id, \
             cu.display_name AS cu_display_name, cu.unreachable AS cu_unreachable, \
             cu.surveys_opt_out AS cu_surveys_opt_out, cu.created_at AS cu_created_at, \
             cu.surveyed_at AS cu_surveyed_at, co.* \
             FROM customers cu \
             LEFT JOIN conversations co ON co.id = (\
               SELECT id FROM conversations WHERE customer_id = cu.id AND thread_key = $3 \
               AND status <> 'resolved' ORDER BY created_at DESC, id DESC LIMIT 1) \
             WHERE cu.channel = $1 AND cu.external_id = $2",
        )
        .bind(channel)
        .bind(external_id)
        .bind(thread_key)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            // New (or created by another process just now, which may
            // have opened a conversation too).
            let customer = self
                .write_customer(channel, external_id, display_name)
                .await?;
            let open = self.current_conversation(&customer.id, thread_key).await?;
            return Ok((customer, open));
        };
        let known = Customer::from_prefixed(&row)?;
        let open = match get::<Option<String>>(&row, "id")? {
            Some(_) => Some(Conversation::from_row(&row)?),
            None => None,
        };
        // A new name is written; their conversation stays the one read.
        let customer = match display_name {
            Some(name) if known.display_name.as_deref() != Some(name) => {
                self.write_customer(channel, external_id, display_name)
                    .await?
            }
            _ => known,
        };
        Ok((customer, open))
    }

    /// Creates the customer, or updates the name of a known one.
    async fn write_customer(
        &self,
        channel: &str,
        external_id: &str,
        display_name: Option<&str>,
    ) -> Result<Customer, Error> {
        let now = self.now();
        let row = sqlx::query(
            "INSERT INTO customers (id, channel, external_id, display_name, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (channel, external_id) DO UPDATE SET display_name = COALESCE(EXCLUDED.display_name, customers.display_name) \
             RETURNING *",
        )
        .bind(new_id())
        .bind(channel)
        .bind(external_id)
        .bind(display_name)
        .bind(now)
        .fetch_one(&self.writer)
        .await?;
        Customer::from_row(&row)
    }

    /// The customer known on `channel` as `external_id`, if any (never
    /// creates one).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn find_customer(
        &self,
        channel: &str,
        external_id: &str,
    ) -> Result<Option<Customer>, Error> {
        let row = sqlx::query("SELECT * FROM customers WHERE channel = $1 AND external_id = $2")
            .bind(channel)
            .bind(external_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Customer::from_row).transpose()
    }

    /// A customer by id.
    ///
    /// # Errors
    /// [`Error::NotFound`] or a database failure.
    pub async fn customer(&self, id: &CustomerId) -> Result<Customer, Error> {
        let row = sqlx::query("SELECT * FROM customers WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "customer",
                id: id.to_string(),
            })?;
        Customer::from_row(&row)
    }

    /// Marks a customer as unreachable (e.g. they blocked the bot).
    ///
    /// # Errors
    /// On a database failure.
    pub async fn set_unreachable(
        &self,
        customer_id: &CustomerId,
        unreachable: bool,
    ) -> Result<(), Error> {
        sqlx::query("UPDATE customers SET unreachable = $1 WHERE id = $2")
            .bind(i64::from(unreachable))
            .bind(customer_id.as_str())
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
