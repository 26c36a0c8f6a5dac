CREATE TABLE `media` (
	`id` text PRIMARY KEY NOT NULL,
	`owner_id` text NOT NULL,
	`content_type` text NOT NULL,
	`size` integer NOT NULL,
	`sha256` text NOT NULL,
	`r2_key` text NOT NULL,
	`created_at` integer NOT NULL,
	`bound_kind` text,
	`bound_id` text,
	`bound_peer` text
);
--> statement-breakpoint
CREATE INDEX `media_owner_idx` ON `media` (`owner_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `rooms` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`category` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`lat` real,
	`lon` real,
	`cell` text,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	`online_count` integer DEFAULT 0 NOT NULL,
	`message_count` integer DEFAULT 0 NOT NULL,
	`last_message_at` integer
);
--> statement-breakpoint
CREATE INDEX `rooms_category_idx` ON `rooms` (`category`,`id`);--> statement-breakpoint
CREATE INDEX `rooms_created_by_idx` ON `rooms` (`created_by`,`created_at`);--> statement-breakpoint
CREATE INDEX `rooms_cell_idx` ON `rooms` (`cell`);--> statement-breakpoint
CREATE TABLE `uptime_checks` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`checked_at` integer NOT NULL,
	`ok` integer NOT NULL,
	`details` text DEFAULT '{}' NOT NULL
);
--> statement-breakpoint
CREATE INDEX `uptime_checks_at_idx` ON `uptime_checks` (`checked_at`);--> statement-breakpoint
CREATE TABLE `user_locations` (
	`user_id` text PRIMARY KEY NOT NULL,
	`lat` real NOT NULL,
	`lon` real NOT NULL,
	`cell` text NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `user_locations_cell_idx` ON `user_locations` (`cell`,`updated_at`);--> statement-breakpoint
CREATE TABLE `users` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
