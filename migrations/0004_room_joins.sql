CREATE TABLE `room_joins` (
	`user_id` text NOT NULL,
	`room_id` text NOT NULL,
	`joined_at` integer NOT NULL,
	PRIMARY KEY(`user_id`, `room_id`)
);
